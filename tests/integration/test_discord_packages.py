"""Over the loopback fake Discord: /layer import with an attached card or package, and the
probes a switch runs, blocking it when the community says so."""

from __future__ import annotations

import os
from pathlib import Path

from bot.messages import Scope
from profiles import load_builtin_library
from profiles.packages import PackageInfo, build_package, package_toml
from tests.helpers.cards import CARDS, chunk
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.fake_discord import FakeDiscord
from tests.integration import test_discord
from tests.integration.test_discord import World, answers, mention, reply_to, running

fake = test_discord.fake  # the fixtures of the Discord tests: a fake Discord and a server
world = test_discord.world


async def test_an_attached_png_card_becomes_a_community_layer(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend("Aisle nine.")
    card = ("nyx.v3.png", (CARDS / "nyx.v3.png").read_bytes())
    async with running(tmp_path, fake, backend) as (app, _):
        (denied,) = await answers(fake, app, await fake.invoke(
            world.channel_mod, world.general, "layer", "import", files={"file": card}))
        assert "Only community moderators" in denied.content
        (done,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import", files={"file": card}))
        assert done.content.startswith("Character card 'Nyx' (chara_card_v3, PNG (ccv3 chunk))")
        assert "⚠️ 6 line(s) try to override the stack" in done.content
        assert done.content.endswith("Imported into this community: layer nyx.")
        await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "set", layers="base nyx"))
        asked = await fake.say(world.member, world.general, f"{mention(fake)} any maps?")
        (reply,) = await reply_to(fake, app, asked)
        assert reply.content == "Aisle nine."
    system = backend.requests[-1].messages[0].content
    assert "night-owl librarian" in system and "moon drawn in 1650" in system
    assert "Ignore all previous" not in system


async def test_a_package_import_is_refused_until_confirmed(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    library = load_builtin_library()
    tutor = build_package(library, ["tutor"], PackageInfo(name="tutor-pack"))
    slower = library.layer("tutor").model_copy(update={"prompt": "Go slowly."})
    changed = build_package(library.extended([slower]), ["tutor"], PackageInfo(name="t2"))
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        (same,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import",
            files={"file": ("tutor.cabot.toml", package_toml(tutor).encode())}))
        assert "Everything in it is already here; nothing changed." in same.content
        (refused,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import",
            files={"file": ("t2.cabot.toml", package_toml(changed).encode())}))
        assert "tutor is built in and cannot be replaced here" in refused.content
        (renamed,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import", options="tutor=slow-tutor",
            files={"file": ("t2.cabot.toml", package_toml(changed).encode())}))
        # The package's layer and profile are both called tutor: both are renamed, and the
        # profile's stack names the renamed layer.
        assert renamed.content.endswith(
            "Imported into this community: layer slow-tutor, profile slow-tutor.")
        library_now = await app.resolver.library_for("discord", world.guild.id)
    assert library_now.profile("slow-tutor").layers == ("base", "slow-tutor", "concise")


async def test_a_failing_probe_blocks_a_switch_when_the_community_says_so(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    # The fake backend ignores the yes-no grammar: the yes-or-no probe fails.
    async with running(tmp_path, fake, FakeBackend(), settings={"switch_probes": True}) as (
            app, _):
        (block,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "probes", mode="block"))
        assert block.content.startswith("From now on, failing probes block a switch")
        interaction = await fake.invoke(world.channel_mod, world.general, "profile", "use",
                                        profile="yes-no")
        await fake.wait_for(lambda: len(interaction.answers()) >= 2)
        await app.router.drain()
        running_note, verdict = interaction.answers()
        assert running_note.content.startswith("🔎 Running 2 probes of profile 'yes-no'")
        assert verdict.content.startswith("Not switched: ❌ 1 of 2 probes failed:")
        assert verdict.ephemeral and running_note.ephemeral
        bindings = await app.store.alignment.bindings_for(
            Scope(platform="discord", community=world.guild.id, channel=world.general))
    assert bindings == {}


async def test_a_card_picture_larger_than_a_layer_file_is_still_read(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    small = (CARDS / "mira.v2.png").read_bytes()
    at = small.index(b"IEND") - 4  # a real card is a picture: far more than 64 KB
    big = small[:at] + chunk(b"prVt", os.urandom(300_000)) + small[at:]
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        (done,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import",
            files={"file": ("mira.png", big)}))
        assert done.content.endswith("Imported into this community: layer captain-mira.")
        (too_big,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "import",
            files={"file": ("mira.toml", b"#" * 70_000)}))
        assert "cabot reads attached files of up to 64 KB" in too_big.content
