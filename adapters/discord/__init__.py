"""cabot on Discord, through discord.py.

- ``adapter``: ``DiscordAdapter``, the lifecycle and the Adapter protocol.
- ``client``: the discord.py client (intents, events, where it connects).
- ``commands``: the slash commands, delivered to the core as command text.
- ``connection``: gateway outages, logged once each (discord.py reconnects by itself).
- ``convert``: Discord messages and interactions as neutral messages; safe outgoing text.
- ``delivery``: outgoing messages: posting, editing and showing typing.
- ``requests``: answering interactions, and Discord's errors as cabot's.
- ``settings``: ``DiscordSettings`` (``CABOT_DISCORD_*``).

Inside this package ``import discord`` is the SDK: imports are absolute.
"""

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.settings import DiscordSettings

__all__ = ["DiscordAdapter", "DiscordSettings"]
