"""The moderators' workflow on Telegram, through python-telegram-bot and the fake Bot API:
layers sent as documents, history and rollback, previews sent privately, diffs."""

from __future__ import annotations

from pathlib import Path

from bot.backends.base import GenerationRequest
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_telegram import GROUP
from tests.integration.test_telegram import (  # noqa: F401  (the autouse fixture)
    _ptb_timedelta,
    group_scope,
    running,
)

PIRATE = (b'description = "Talks like a pirate"\n'
          b'prompt = "Answer like a friendly pirate."\n[sampling]\ntemperature = 0.9\n')


def by_prompt(request: GenerationRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    voice = "Arr" if "pirate" in system else "Hello"
    return f"{voice}, about {last_user_text(request)}"


async def test_an_admin_sends_a_layer_as_a_document_and_edits_it_by_replying_to_one(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as bots:
        document = bots.fake.upload("pirate.toml", PIRATE)
        await bots.say(GROUP, bots.carol, "/layer create pirate", document=document)
        assert "Layer 'pirate' is now available in this community (v1)" in (
            bots.replies(GROUP)[-1])
        assert [call.params["file_id"] for call in bots.fake.calls_to("getFile")] == [
            document["file_id"]]
        assert len(bots.fake.calls_to("download")) == 1
        layers = dict(await bots.app.store.alignment.custom_layers("telegram", str(GROUP)))
        assert 'prompt = "Answer like a friendly pirate."' in layers["pirate"]

        # A file sent first, then a command replying to it.
        quieter = bots.fake.upload("quiet.toml", b'description = "A quiet pirate"\n')
        sent = bots.fake.post(GROUP, bots.carol, "", document=quieter)
        await bots.settle()
        await bots.say(GROUP, bots.carol, "/layer edit pirate",
                       reply_to=sent["message"]["message_id"])
        assert "Layer 'pirate' is now v2" in bots.replies(GROUP)[-1]

        # A member's file is read, but the command is refused; nothing changes.
        await bots.say(GROUP, bots.bob, "/layer create parrot",
                       document=bots.fake.upload("parrot.toml", PIRATE))
        assert bots.replies(GROUP)[-1].startswith("Only community moderators")
        # A bad layer names the field; nothing is saved.
        bad = bots.fake.upload("bad.toml", b'description = "x"\n[rules]\nbaned = ["arr"]\n')
        await bots.say(GROUP, bots.carol, "/layer create broken", document=bad)
        assert "field 'rules.baned': unknown field; allowed fields are banned" in (
            bots.replies(GROUP)[-1])
        layers = dict(await bots.app.store.alignment.custom_layers("telegram", str(GROUP)))
        assert set(layers) == {"pirate"}
        audit = await bots.app.store.alignment.audit_log("telegram", str(GROUP))
        assert [(a.actor_name, a.action, a.new) for a in audit] == [
            ("Carol", "edit layer", "pirate v2"), ("Carol", "create layer", "pirate v1")]


async def test_a_layer_typed_in_the_message_is_created_and_history_rolls_it_back(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as bots:
        await bots.say(GROUP, bots.carol,
                       '/layer create pirate\ndescription = "Talks like a pirate"')
        await bots.say(GROUP, bots.carol,
                       '/layer edit pirate\ndescription = "Talks like a parrot"')
        await bots.say(GROUP, bots.bob, "/layer history pirate")
        history = bots.replies(GROUP)[-1]
        assert "History of layer 'pirate'" in history and "Carol: edit" in history
        await bots.say(GROUP, bots.carol, "/layer rollback pirate v1")
        assert "as it was in v1 (now v3)" in bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.carol, "/layer show pirate")
        assert 'description = "Talks like a pirate"' in bots.replies(GROUP)[-1]


async def test_profile_history_and_rollback_in_a_group(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        await bots.say(GROUP, bots.carol, "/profile use kids")
        await bots.say(GROUP, bots.alice, "/profile use tutor")
        await bots.say(GROUP, bots.bob, "/profile history")
        history = bots.replies(GROUP)[-1]
        assert "Alice: set → profile 'tutor'" in history and "Carol: set → profile 'kids'" in (
            history)
        await bots.say(GROUP, bots.bob, "/profile rollback")
        assert bots.replies(GROUP)[-1].startswith("Only moderators")
        await bots.say(GROUP, bots.carol, "/profile rollback")
        assert "This channel is back to v1: profile 'kids'" in bots.replies(GROUP)[-1]
        assert await bots.binding(group_scope()) == {"channel": "kids"}
        audit = await bots.app.store.alignment.audit_log("telegram", str(GROUP), limit=1)
        assert (audit[0].actor_name, audit[0].action) == ("Carol", "rollback channel to v1")


async def test_a_preview_goes_privately_to_whoever_can_be_written_to(tmp_path: Path) -> None:
    async with running(tmp_path, FakeBackend(by_prompt)) as bots:
        await bots.say(GROUP, bots.carol,
                       '/layer create pirate\ndescription = "Pirate"\nprompt = "Be a pirate."')
        before = len(bots.replies(GROUP))
        # Bob has a private chat with the bot: the preview goes there.
        await bots.say(GROUP, bots.bob, "/profile preview base pirate -- the sea")
        private = bots.replies(bots.bob["id"])
        assert private[-1].startswith("🔍 Preview, for you only")
        assert "With layers base, pirate:\nArr, about" in private[-1]
        assert "With the stack in effect here (profile 'default'):\nHello, about" in (
            private[-1])
        assert bots.replies(GROUP)[before:] == [
            "📬 I sent you the answer in our private chat."]
        # Carol never started one: it is answered in the group, saying why.
        await bots.say(GROUP, bots.carol, "/profile preview kids -- the sea")
        shown = bots.replies(GROUP)[before + 1:]
        assert shown[0].startswith("(I can't write to you privately")
        assert shown[1].startswith("🔍 Preview, for you only") and "profile 'kids'" in shown[1]
        assert bots.fake.calls_to("sendMessage")[-3].error_code == 403
        # Nothing was remembered and nothing changed.
        assert await bots.app.store.conversations.history(group_scope(), 10) == []
        assert await bots.binding(group_scope()) == {}
        assert len(bots.backend.requests) == 4


async def test_a_diff_in_a_group(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        await bots.say(GROUP, bots.bob, "/profile diff kids")
        shown = bots.replies(GROUP)[-1]
        assert shown.startswith("Profile 'kids' compared with the stack in effect here")
        assert "Layers: + family-friendly, + concise, + no-links, + no-pii" in shown
