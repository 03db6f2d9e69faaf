"""/profile automod over the loopback fake Discord: the server's rules become a locked layer.

The fake serves AutoMod rules at GET /guilds/{guild.id}/auto-moderation/rules in Discord's
wire format, only to a bot with Manage Server, as Discord does.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.fake_backend import FakeBackend
from tests.helpers.fake_discord import MANAGE_GUILD, FakeDiscord
from tests.integration import test_discord
from tests.integration.test_discord import World, answers, mention, reply_to, running

fake = test_discord.fake  # the fixtures of the Discord tests: a fake Discord and a server
world = test_discord.world


async def test_automod_rules_become_a_locked_layer_the_bot_never_breaks(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    fake.add_automod_rule(world.guild, "No scams", keyword_filter=["badword", "*scam*"],
                          regex_patterns=[r"discord\.gg/\w+"], allow_list=["scampi"])
    fake.add_automod_rule(world.guild, "Discord's lists", trigger_type=4, presets=[1, 3])
    fake.add_automod_rule(world.guild, "Old rule", keyword_filter=["legacy"], enabled=False)
    backend = FakeBackend("This badword is a scammer: join discord.gg/free, eat scampi.")
    async with running(tmp_path, fake, backend) as (app, _):
        (refused,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "automod", action="import"))
        assert "cabot may not read this server's AutoMod rules" in refused.content
        assert "Manage Server" in refused.content

        managers = fake.add_role(world.guild, "cabot managers", MANAGE_GUILD)
        fake.add_member(world.guild, fake.bot, [managers])
        (channel_mod,) = await answers(fake, app, await fake.invoke(
            world.channel_mod, world.general, "profile", "automod", action="import"))
        assert "Only community moderators" in channel_mod.content

        (done,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "automod", action="import"))
        assert done.content.startswith("1 AutoMod keyword rule(s) → layer 'automod': "
                                       "2 keyword(s), 1 regular expression(s).")
        assert "rule \"Discord's lists\" uses Discord's own word lists" in done.content
        assert "rule 'Old rule' is disabled" in done.content
        assert "locked into every stack of this community" in done.content
        assert not done.ephemeral

        asked = await fake.say(world.member, world.other, f"{mention(fake)} any tips?")
        (reply,) = await reply_to(fake, app, asked)
        assert reply.content == "This ▇▇▇ is a ▇▇▇: join ▇▇▇, eat scampi."

        (same,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "automod", action="show"))
        assert "matches the server's AutoMod rules" in same.content and same.ephemeral

        fake.automod_rules[world.guild.id][0]["trigger_metadata"]["keyword_filter"] = [
            "*scam*", "phish*"]
        (changed,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "automod", action="show"))
        assert "+ keyword 'phish*' — in AutoMod, not in the layer" in changed.content
        assert "- keyword 'badword' — in the layer, no longer in AutoMod" in changed.content

        (updated,) = await answers(fake, app, await fake.invoke(
            world.server_mod, world.general, "profile", "automod", action="import"))
        assert "It replaces the previous import (1 added, 1 removed)" in updated.content
        assert "already locked" in updated.content
        audit = await app.store.alignment.audit_log("discord", world.guild.id)
    actions = [e.action for e in audit]  # newest first
    assert actions[:3] == ["define layer", "lock", "define layer"]


async def test_automod_in_a_direct_message_is_explained(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        (answer,) = await answers(fake, app, await fake.invoke(
            world.member, fake.dm_channel(world.member), "profile", "automod",
            action="show"))
    assert "AutoMod rules belong to a server" in answer.content
