"""Discord messages and interactions as cabot's neutral messages, and safe outgoing text."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.messages import Command, IncomingMessage, Scope

PLATFORM = "discord"
MESSAGE_KEY = "discord_message"
"""``IncomingMessage.extras`` key of the discord.py Message a chat message came from."""
INTERACTION_KEY = "discord_interaction"
"""``IncomingMessage.extras`` key of the reply handle of a slash-command interaction."""

ZERO_WIDTH_SPACE = "\u200b"
LOOKALIKE_AT = "\uff20"  # FULLWIDTH COMMERCIAL AT: renders like @, never parsed as a mention
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_MENTION = re.compile(r"<@([!&]?)(\d+)>")
# The message kinds people write; joins, pins, thread starts etc. are not talk.
_CHAT_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def neutralize_mentions(text: str, limit: int) -> str:
    """``text`` that pings nobody even if ``allowed_mentions`` were lost on the way.

    ``@everyone``, ``@here``, ``<@id>``, ``<@!id>`` and ``<@&id>`` get a zero-width space
    after the ``@``, so they show as typed but are not mentions. When that would push a
    message over ``limit`` characters (the core already split it to fit), the ``@`` is
    swapped for a look-alike instead, which keeps the length.
    """
    safe = _MASS_MENTION.sub(lambda m: f"@{ZERO_WIDTH_SPACE}{m.group(1)}", text)
    safe = _MENTION.sub(lambda m: f"<@{ZERO_WIDTH_SPACE}{m.group(1)}{m.group(2)}>", safe)
    if len(safe) <= limit:
        return safe
    safe = _MASS_MENTION.sub(lambda m: f"{LOOKALIKE_AT}{m.group(1)}", text)
    return _MENTION.sub(lambda m: f"<{LOOKALIKE_AT}{m.group(1)}{m.group(2)}>", safe)


def scope_for(channel: Any, guild_id: int | None, user_id: int) -> Scope:
    """Where a message lives: a DM is its own community; a thread keeps its parent channel.

    Keeping the parent as the channel lets a thread inherit the channel's profile through
    the core's thread -> channel -> community resolution.
    """
    if guild_id is None:
        return Scope(platform=PLATFORM, community=f"dm-{user_id}", channel=str(channel.id))
    if isinstance(channel, discord.Thread):
        return Scope(platform=PLATFORM, community=str(guild_id),
                     channel=str(channel.parent_id), thread=str(channel.id))
    return Scope(platform=PLATFORM, community=str(guild_id), channel=str(channel.id))


def moderator_flags(
    user: discord.abc.User, channel: Any, channel_permissions: discord.Permissions | None = None
) -> tuple[bool, bool]:
    """``(moderates_channel, moderates_community)``, from the permissions right now.

    Community: Manage Server; channel: Manage Channels there (overwrites included); an
    administrator or the owner has both. Outside a guild the user owns the conversation.
    """
    if not isinstance(user, discord.Member):
        return True, True
    guild_permissions = user.guild_permissions  # owner and administrator: all
    if channel_permissions is None:
        if isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            channel_permissions = channel.permissions_for(user)
        else:
            channel_permissions = guild_permissions
    community = guild_permissions.administrator or guild_permissions.manage_guild
    in_channel = channel_permissions.administrator or channel_permissions.manage_channels
    return in_channel or community, community


def is_chat(message: discord.Message) -> bool:
    """Whether a message is something a person said (not a join, pin or thread notice)."""
    return message.type in _CHAT_TYPES


def _bot_role_id(message: discord.Message) -> int | None:
    guild = message.guild
    if guild is None:
        return None
    role = guild.self_role
    return role.id if role is not None else None


def strip_bot_mention(text: str, bot_id: int, role_id: int | None) -> str:
    """``text`` without mentions of the bot (or its managed role), tidied."""
    ids = {str(bot_id)} | ({str(role_id)} if role_id is not None else set())

    def drop(match: re.Match[str]) -> str:
        return "" if match.group(2) in ids else match.group(0)

    return re.sub(r"[ \t]{2,}", " ", _MENTION.sub(drop, text)).strip()


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """A direct mention of the bot or of its managed role (``@everyone`` does not count)."""
    if bot_id in message.raw_mentions:
        return True
    role_id = _bot_role_id(message)
    return role_id is not None and role_id in message.raw_role_mentions


def replies_to_bot(message: discord.Message, bot_id: int) -> bool:
    """Whether ``message`` answers a message the bot wrote."""
    reference = message.reference
    if reference is None:
        return False
    replied = reference.resolved or reference.cached_message
    return isinstance(replied, discord.Message) and replied.author.id == bot_id


def replied_message(message: discord.Message) -> discord.Message | None:
    """The earlier message ``message`` answers, when Discord resolved it."""
    reference = message.reference
    if reference is None:
        return None
    replied = reference.resolved or reference.cached_message
    return replied if isinstance(replied, discord.Message) else None


def incoming_from_message(message: discord.Message, bot_id: int, channel: Any
                          ) -> IncomingMessage:
    """The neutral message for a Discord message (``channel`` resolved for threads)."""
    author = message.author
    moderates_channel, moderates_community = moderator_flags(author, channel)
    replied = replied_message(message)
    return IncomingMessage(
        scope=scope_for(channel, message.guild.id if message.guild else None, author.id),
        message_id=str(message.id),
        author_id=str(author.id),
        author_name=author.display_name,
        text=strip_bot_mention(message.content, bot_id, _bot_role_id(message)),
        is_bot=author.bot,
        is_self=author.id == bot_id,
        is_direct=message.guild is None,
        mentions_bot=mentions_bot(message, bot_id),
        replies_to_bot=replies_to_bot(message, bot_id),
        reply_to_text=(strip_bot_mention(replied.content, bot_id, _bot_role_id(message))
                       if replied is not None else None),
        reply_to_author=replied.author.display_name if replied is not None else None,
        moderates_channel=moderates_channel,
        moderates_community=moderates_community,
        extras={MESSAGE_KEY: message},
    )


def incoming_from_interaction(
    interaction: discord.Interaction[Any], text: str, handle: object,
    command: Command | None = None,
) -> IncomingMessage:
    """The neutral message for a slash command: the typed ``command`` and how it reads.

    The moderator flags come from the permissions Discord resolved for this member in
    this channel when the command ran, not from the command's default-permission hint.
    """
    user = interaction.user
    channel = interaction.channel
    moderates_channel, moderates_community = moderator_flags(
        user, channel, interaction.permissions if interaction.guild_id else None
    )
    channel_id = channel.id if channel is not None else interaction.channel_id or 0
    place = channel if channel is not None else discord.Object(id=channel_id)
    return IncomingMessage(
        scope=scope_for(place, interaction.guild_id, user.id),
        message_id=str(interaction.id),
        author_id=str(user.id),
        author_name=user.display_name,
        text=text,
        is_bot=user.bot,
        is_direct=interaction.guild_id is None,
        mentions_bot=True,
        moderates_channel=moderates_channel,
        moderates_community=moderates_community,
        command=command,
        extras={INTERACTION_KEY: handle},
    )
