"""discord.py's own objects, parsed from the fake's payloads with no connection at all.

For pure tests of the adapter's converters: the payloads are the ones ``FakeDiscord``
sends over its gateway, and discord.py's ``ConnectionState`` parses them as a connected
client would (guild, roles, member permissions, threads, replies).
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.client import intents
from tests.helpers.fake_discord import FakeDiscord, FakeGuild, FakeInteraction, FakeMessage


class OfflineDiscord:
    """A discord.py client state that knows ``fake``'s bot user and the guilds loaded."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.bot_id = int(fake.bot["id"])
        self._client = discord.Client(intents=intents())
        self._state = self._client._connection
        user: Any = fake.bot  # discord.py types its payloads as TypedDicts
        self._state.user = discord.ClientUser(state=self._state, data=user)

    def load(self, guild: FakeGuild) -> discord.Guild:
        """What GUILD_CREATE tells the client about ``guild`` (load it once it is built)."""
        data: Any = self.fake.guild_payload(guild)
        return self._state._add_guild_from_data(data)

    def message(self, message: FakeMessage, **overrides: Any) -> discord.Message:
        """``message`` as MESSAGE_CREATE delivers it (``overrides``: payload fields)."""
        data: Any = {**self.fake.message_payload(message), **overrides}
        channel: Any = self._state._get_guild_channel(data)[0]
        return discord.Message(state=self._state, channel=channel, data=data)

    def interaction(self, interaction: FakeInteraction) -> discord.Interaction[Any]:
        """``interaction`` as INTERACTION_CREATE delivers it."""
        data: Any = interaction.payload
        return discord.Interaction(data=data, state=self._state)
