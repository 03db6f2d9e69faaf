"""The moderators' workflow on Discord, through discord.py and the fake Discord: layers
attached to a slash command or a message, history and rollback, previews only the asker
sees, diffs."""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.backends.base import GenerationRequest
from bot.messages import Scope
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_discord import FakeDiscord
from tests.integration import test_discord
from tests.integration.test_discord import World, answers, reply_to, running

fake = test_discord.fake
world = test_discord.world
"""The fake Discord and its world of test_discord.py, as fixtures here too."""

PIRATE = (b'description = "Talks like a pirate"\n'
          b'prompt = "Answer like a friendly pirate."\n[sampling]\ntemperature = 0.9\n')


def by_prompt(request: GenerationRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    voice = "Arr" if "pirate" in system else "Hello"
    return f"{voice}, about {last_user_text(request)}"


async def community_layers(app: App, world: World) -> dict[str, str]:
    return dict(await app.store.alignment.custom_layers("discord", world.guild.id))


async def test_a_layer_attached_to_the_slash_command_is_created(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        refused = await fake.invoke(world.channel_mod, world.general, "layer", "create",
                                    name="pirate", files={"file": ("pirate.toml", PIRATE)})
        (no,) = await answers(fake, app, refused)
        create = await fake.invoke(world.server_mod, world.general, "layer", "create",
                                   name="pirate", files={"file": ("pirate.toml", PIRATE)})
        (done,) = await answers(fake, app, create)
        show = await fake.invoke(world.member, world.general, "layer", "show", name="pirate")
        (shown,) = await answers(fake, app, show)
        layers = await community_layers(app, world)
        audit = await app.store.alignment.audit_log("discord", world.guild.id)
    assert no.ephemeral and no.content.startswith("Only community moderators")
    assert not done.ephemeral and "Layer 'pirate' is now available" in done.content
    assert 'prompt = "Answer like a friendly pirate."' in layers["pirate"]
    assert len(fake.downloads) == 2  # each command read its file from the CDN
    assert shown.ephemeral and "```toml" in shown.content and "v1, by serena" in shown.content
    assert [(a.actor_name, a.action) for a in audit] == [("serena", "create layer")]


async def test_a_layer_attached_to_a_message_or_in_its_code_block(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        filed = await fake.say(world.server_mod, world.general, "/layer create pirate",
                               files={"pirate.toml": PIRATE})
        (created,) = await reply_to(fake, app, filed)
        typed = await fake.say(world.server_mod, world.general,
                               '/layer edit pirate\n```toml\ndescription = "Quieter"\n```')
        (edited,) = await reply_to(fake, app, typed)
        chat = await fake.say(world.member, world.general, "look at my cat",
                              files={"cat.toml": b"not read"})
        await app.router.drain()
        layers = await community_layers(app, world)
    assert "Layer 'pirate' is now available" in created.content
    assert "Layer 'pirate' is now v2" in edited.content
    assert layers["pirate"] == 'name = "pirate"\ndescription = "Quieter"\n'
    assert fake.files[chat.attachments[0]["id"]] == b"not read"
    assert len(fake.downloads) == 1, "a chat message's files are never downloaded"


async def test_history_and_rollback_with_slash_commands(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        for profile in ("kids", "tutor"):
            await answers(fake, app, await fake.invoke(
                world.channel_mod, world.general, "profile", "use", profile=profile))
        (history,) = await answers(fake, app, await fake.invoke(
            world.member, world.general, "profile", "history"))
        (member,) = await answers(fake, app, await fake.invoke(
            world.member, world.general, "profile", "rollback"))
        (too_far,) = await answers(fake, app, await fake.invoke(
            world.channel_mod, world.general, "profile", "rollback", scope="community"))
        (done,) = await answers(fake, app, await fake.invoke(
            world.channel_mod, world.general, "profile", "rollback", version="v1"))
        scope = Scope(platform="discord", community=world.guild.id, channel=world.general)
        resolved = await app.resolver.resolve(scope)
    assert history.ephemeral and "chan: set → profile 'tutor'" in history.content
    assert member.content.startswith("Only moderators")
    assert too_far.content.startswith("Only community moderators")
    assert not done.ephemeral and "This channel is back to v1: profile 'kids'" in done.content
    assert resolved.profile == "kids"


async def test_a_preview_is_shown_only_to_the_asker_and_changes_nothing(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend(by_prompt)
    async with running(tmp_path, fake, backend) as (app, _):
        await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "create", name="pirate",
            files={"file": ("pirate.toml", PIRATE)}))
        before = list(fake.visible(world.general))
        preview = await fake.invoke(world.member, world.general, "profile", "preview",
                                    stack="base pirate", message="the sea")
        shown = await answers(fake, app, preview)
        diff = await fake.invoke(world.member, world.general, "profile", "diff", a="kids")
        diffed = await answers(fake, app, diff)  # split at Discord's 2,000 characters
        scope = Scope(platform="discord", community=world.guild.id, channel=world.general)
        remembered = await app.store.conversations.history(scope, 10)
        bindings = await app.store.alignment.bindings_for(scope)
    text = "\n".join(message.content for message in shown)
    assert all(message.ephemeral for message in shown)
    assert "With layers base, pirate:\nArr, about" in text
    assert "With the stack in effect here (profile 'default'):\nHello, about" in text
    assert fake.visible(world.general) == before, "nobody else saw it"
    assert remembered == [] and bindings == {}
    assert len(backend.requests) == 2
    assert diffed and all(message.ephemeral for message in diffed)
    assert "Layers: + family-friendly" in diffed[0].content


async def test_a_layer_in_use_is_not_deleted(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "create", name="pirate",
            files={"file": ("pirate.toml", PIRATE)}))
        await answers(fake, app, await fake.invoke(
            world.channel_mod, world.other, "profile", "set", layers="base pirate"))
        (refused,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "layer", "delete", name="pirate"))
        layers = await community_layers(app, world)
    assert f"channel {world.other} (layers base, pirate)" in refused.content
    assert "pirate" in layers


async def test_a_preview_typed_as_a_message_goes_to_the_askers_direct_messages(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend(by_prompt)
    fake.closed_dms.add(world.channel_mod["id"])
    async with running(tmp_path, fake, backend) as (app, _):
        asked = await fake.say(world.member, world.general, "/profile preview kids -- the sea")
        (notice,) = await reply_to(fake, app, asked)
        private = fake.bot_messages(fake.dm_channel(world.member))
        closed = await fake.say(world.channel_mod, world.general,
                                "/profile preview kids -- the sea")
        shown = await reply_to(fake, app, closed)
    assert notice.content == "📬 I sent you the answer in a direct message."
    assert len(private) == 1 and private[0].content.startswith("🔍 Preview, for you only")
    assert "With profile 'kids'" in private[0].content
    assert shown[0].content.startswith("(I can't send you a direct message")
    assert shown[1].content.startswith("🔍 Preview, for you only")
    assert not any(m.pinged_anyone for m in fake.messages.values())
