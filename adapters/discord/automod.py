"""Reading a server's AutoMod rules (GET /guilds/{guild.id}/auto-moderation/rules).

discord.py's ``Guild.fetch_automod_rules()`` reads them; Discord answers only a bot with
the Manage Server permission. Each rule becomes the core's neutral
:class:`~profiles.automod.AutoModRule` here, at the adapter's edge, and discord.py's
errors become cabot's.
"""

from __future__ import annotations

import aiohttp
import discord

from bot.errors import AdapterError, ForbiddenError
from profiles.automod import AutoModRule, TriggerKind

TRIGGERS: dict[discord.AutoModRuleTriggerType, TriggerKind] = {
    discord.AutoModRuleTriggerType.keyword: "keyword",
    discord.AutoModRuleTriggerType.keyword_preset: "keyword_preset",
    discord.AutoModRuleTriggerType.mention_spam: "mention_spam",
    discord.AutoModRuleTriggerType.spam: "spam",
    discord.AutoModRuleTriggerType.member_profile: "member_profile",
    discord.AutoModRuleTriggerType.harmful_link: "harmful_link",
}


def neutral_rule(rule: discord.AutoModRule) -> AutoModRule:
    """One discord.py rule as the core's model."""
    trigger = rule.trigger
    presets = tuple(name for name, on in trigger.presets if on) if trigger.presets else ()
    applies = rule.event_type == discord.AutoModRuleEventType.message_send
    return AutoModRule(
        id=str(rule.id),
        name=rule.name,
        trigger=TRIGGERS.get(trigger.type, "unknown"),
        enabled=rule.enabled and applies,
        keywords=tuple(trigger.keyword_filter or ()),
        regex_patterns=tuple(trigger.regex_patterns or ()),
        allow_list=tuple(trigger.allow_list or ()),
        presets=presets,
    )


async def fetch_rules(client: discord.Client, guild_id: int) -> tuple[AutoModRule, ...]:
    """Every AutoMod rule of the server ``guild_id``.

    Raises:
        ForbiddenError: the bot lacks Manage Server there.
        AdapterError: Discord refused otherwise, or cannot be reached.
    """
    guild = client.get_guild(guild_id)
    try:
        if guild is None:
            guild = await client.fetch_guild(guild_id)
        rules = await guild.fetch_automod_rules()
    except discord.Forbidden:
        raise ForbiddenError(
            "cabot may not read this server's AutoMod rules: Discord shows them only to "
            "members with the Manage Server permission. Give cabot's role Manage Server, "
            "then run /profile automod import again."
        ) from None
    except discord.HTTPException as error:
        raise AdapterError(f"Discord refused to show the AutoMod rules: {error.status} "
                           f"{error.text}") from None
    except (aiohttp.ClientError, OSError) as error:
        raise AdapterError(f"Cannot reach Discord ({type(error).__name__}) to read the "
                           "AutoMod rules; try again.") from None
    return tuple(neutral_rule(rule) for rule in rules)
