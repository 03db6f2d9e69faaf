"""Over the loopback fake Bot API: /layer import with a card sent as a document, and the
probes a switch runs."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cards import CARDS
from tests.helpers.fake_telegram import GROUP
from tests.integration.test_telegram import group_scope, running


async def test_a_card_sent_as_a_document_becomes_a_group_layer(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        card = bots.fake.upload("mira.v2.png", (CARDS / "mira.v2.png").read_bytes(),
                                mime_type="image/png")
        await bots.say(GROUP, bots.bob, "/layer import", document=card)
        assert "Only community moderators" in bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.carol, "/layer import", document=card)
        report = bots.replies(GROUP)[-1]
        assert report.startswith("Character card 'Captain Mira' (chara_card_v2, PNG (chara "
                                 "chunk)) → layer 'captain-mira'.")
        assert report.endswith("Imported into this community: layer captain-mira.")
        await bots.say(GROUP, bots.carol, "/profile set base captain-mira")
        await bots.say(GROUP, bots.bob, "@cabot_test_bot is a storm coming for my boat?")
        system = bots.backend.requests[-1].messages[0].content
        assert "red one, which warns ships" in system  # storm + boat: the selective entry
        assert bots.backend.requests[-1].messages[-1].content.endswith(
            "mention the weather at sea.")
        library = await bots.app.resolver.library_for("telegram", str(GROUP))
        assert library.layer_origin("captain-mira") == "this community"


async def test_a_switch_runs_its_probes_and_reports_them(tmp_path: Path) -> None:
    async with running(tmp_path, core={"switch_probes": True}) as bots:
        await bots.say(GROUP, bots.carol, "/profile use kids")
        announced, verdict = bots.replies(GROUP)[-2:]
        assert announced.startswith("This channel now uses profile 'kids'")
        assert verdict == "Probes of profile 'kids': ✅ All 7 probes passed."
        assert (await bots.binding(group_scope()))["channel"] == "kids"
