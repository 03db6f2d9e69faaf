"""The fake Discord's gateway: sessions, heartbeats, RESUME and the ways connections fail.

It speaks gateway v10 as discord.py expects it: HELLO with a heartbeat interval, every
heartbeat (op 1) acknowledged (op 11), IDENTIFY (op 2) answered by READY — with a
``session_id`` and a ``resume_gateway_url`` of its own — and the guilds, RESUME (op 6)
answered by the events the session missed and a RESUMED dispatch, or by INVALID_SESSION
(op 9, ``d: false``) when the session cannot be resumed.

Each session numbers its own events (``s``) and keeps them, so a connection that drops
loses nothing: events dispatched while no connection carries the session are replayed
when it resumes. Tests make connections fail as Discord's do:

- ``drop()``: the TCP connection ends with no close frame (the client sees 1006);
- ``close(code)``: a close frame with ``code``; 4007 (invalid seq) and 4009 (session
  timed out) also end the session, so the next RESUME gets INVALID_SESSION and the
  client must IDENTIFY again; 4004 (authentication failed) is for a revoked token;
- ``stall()``: the connection goes quiet — no heartbeat ACK, no events — while the TCP
  connection stays up (a "zombied" connection, which the client must notice itself);
- ``refuse(times)``: the next connection attempts are answered 502 instead of upgraded;
- ``replay_overlap``: a RESUME also replays that many events the client had already
  seen (delivery is at least once; the client must not act on one event twice).

Every connection is kept in ``links``, in order, with what the client asked (IDENTIFY or
RESUME) and how it ended, so tests can tell a resume from a new session.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import WSMsgType, web

from tests.helpers.fake_discord_wire import JSON, MESSAGE_CONTENT_INTENT, FakeGuild

HEARTBEAT_INTERVAL = 41.25
"""Seconds, Discord's usual interval (tests of heartbeats make it short)."""
SESSION_MEMORY = 1000
"""Events a session keeps for replay on RESUME."""
ENDS_SESSION = frozenset({4007, 4009})
"""Close codes after which the session cannot be resumed (a new IDENTIFY is needed)."""
CLOSE_MESSAGES = {
    1001: "Going away.", 4000: "Unknown error.", 4004: "Authentication failed.",
    4007: "Invalid seq.", 4009: "Session timed out.", 4014: "Disallowed intent(s).",
}
GATEWAY_PATH = "/gateway"
RESUME_PATH = "/resume-gateway"


class GatewayWorld(Protocol):
    """What the gateway needs to know of the fake Discord it belongs to."""

    token: str
    message_content: bool
    bot: JSON
    guilds: dict[str, FakeGuild]
    application_id: str
    port: int

    def guild_payload(self, guild: FakeGuild) -> JSON: ...


@dataclass
class GatewaySession:
    """One gateway session: what a RESUME continues."""

    id: str
    shard: list[int]
    seq: int = 0
    events: deque[JSON] = field(default_factory=lambda: deque(maxlen=SESSION_MEMORY))
    link: GatewayLink | None = None
    resumable: bool = True


@dataclass
class GatewayLink:
    """One websocket connection, as tests look at it afterwards."""

    path: str
    ws: web.WebSocketResponse
    request: web.Request
    asked: list[str] = field(default_factory=list)
    """What the client sent to start: "IDENTIFY" and/or "RESUME" (with its seq)."""
    answered: list[str] = field(default_factory=list)
    """What the fake answered: "READY", "RESUMED", "INVALID_SESSION", "close 4004"..."""
    session: GatewaySession | None = None
    heartbeats: int = 0
    acking: bool = True
    quiet: bool = False
    replayed: int = 0
    """Events sent again after a RESUME."""

    @property
    def open(self) -> bool:
        return not self.ws.closed and not self.quiet


class FakeGateway:
    """The gateway of ``world``; ``notify`` is awaited after each change tests may wait on."""

    def __init__(self, world: GatewayWorld, notify: Callable[[], Awaitable[None]]) -> None:
        self._world = world
        self._notify = notify
        self.heartbeat_interval = HEARTBEAT_INTERVAL
        self.replay_overlap = 0
        self.links: list[GatewayLink] = []
        self.sessions: dict[str, GatewaySession] = {}
        self._refusals = 0
        self.refused = 0
        """Connection attempts answered 502."""
        self._session_ids = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.get(GATEWAY_PATH, self._connect), web.get(RESUME_PATH, self._connect)]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._world.port}{GATEWAY_PATH}"

    @property
    def resume_url(self) -> str:
        return f"ws://127.0.0.1:{self._world.port}{RESUME_PATH}"

    # -- what tests do ------------------------------------------------------------------

    def live_links(self) -> list[GatewayLink]:
        """Connections that carry a session and still deliver its events."""
        return [link for link in self.links
                if link.session is not None and link.session.link is link and link.open]

    @property
    def identifies(self) -> int:
        return sum(1 for link in self.links if "IDENTIFY" in link.asked)

    @property
    def resumes(self) -> int:
        return sum(1 for link in self.links if any(a.startswith("RESUME") for a in link.asked))

    async def drop(self) -> None:
        """End every live connection without a close frame, as a network failure does."""
        for link in self.live_links():
            transport = link.request.transport
            if transport is not None:
                transport.abort()
            self._detach(link)
        await self._notify()

    async def close(self, code: int, links: Iterable[GatewayLink] | None = None) -> None:
        """Close live connections (default: all) with ``code``, as Discord does."""
        for link in list(links if links is not None else self.live_links()):
            await self._close(link, code)

    def stall(self) -> None:
        """Live connections go quiet: heartbeats unanswered, events held back."""
        for link in self.live_links():
            link.acking = False
            link.quiet = True

    def refuse(self, times: int) -> None:
        """Answer the next ``times`` connection attempts with 502 Bad Gateway."""
        self._refusals += times

    async def ask_reconnect(self) -> None:
        """Send RECONNECT (op 7) on live connections: Discord asks the client to resume."""
        for link in self.live_links():
            await self._send(link, {"op": 7, "d": None})

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an event to every session (held for replay by sessions not connected)."""
        for session in list(self.sessions.values()):
            if not session.resumable:
                continue
            frame = self._number(session, event, data)
            link = session.link
            if link is not None and link.open:
                await self._send(link, frame)

    async def stop(self) -> None:
        for link in self.links:
            if not link.ws.closed:
                await link.ws.close()

    # -- the protocol -------------------------------------------------------------------

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        if self._refusals > 0:
            self._refusals -= 1
            self.refused += 1
            await self._notify()
            return web.Response(status=502, text="<html><h1>502 Bad Gateway</h1></html>",
                                content_type="text/html")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        link = GatewayLink(path=request.path, ws=ws, request=request)
        self.links.append(link)
        await self._send(link, {"op": 10, "d": {
            "heartbeat_interval": int(self.heartbeat_interval * 1000)}})
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op, data = payload.get("op"), payload.get("d")
                if op == 1:
                    link.heartbeats += 1
                    if link.acking:
                        await self._send(link, {"op": 11})
                elif op == 2:
                    await self._identify(link, data)
                elif op == 6:
                    await self._resume(link, data)
        except (ConnectionResetError, OSError):
            pass
        finally:
            self._detach(link)
            await self._notify()
        return ws

    async def _identify(self, link: GatewayLink, data: JSON) -> None:
        link.asked.append("IDENTIFY")
        world = self._world
        if data.get("token") != world.token:
            await self._close(link, 4004)
            return
        if int(data.get("intents", 0)) & MESSAGE_CONTENT_INTENT and not world.message_content:
            await self._close(link, 4014)
            return
        for session in self.sessions.values():
            if session.link is None:  # a client identifying again has given the old one up
                session.resumable = False
        self._session_ids += 1
        session = GatewaySession(id=f"session-{self._session_ids}",
                                 shard=data.get("shard") or [0, 1])
        self.sessions[session.id] = session
        session.link = link
        link.session = session
        ready: JSON = {
            "v": 10, "user": world.bot, "session_id": session.id,
            "resume_gateway_url": self.resume_url, "shard": session.shard,
            "guilds": [{"id": g, "unavailable": True} for g in world.guilds],
            "application": {"id": world.application_id, "flags": 0},
            "private_channels": [], "relationships": [],
        }
        await self._send(link, self._number(session, "READY", ready, keep=False))
        link.answered.append("READY")
        for guild in world.guilds.values():
            await self._send(link, self._number(session, "GUILD_CREATE",
                                                world.guild_payload(guild), keep=False))
        await self._notify()

    async def _resume(self, link: GatewayLink, data: JSON) -> None:
        seq = int(data.get("seq") or 0)
        link.asked.append(f"RESUME {seq}")
        if data.get("token") != self._world.token:
            await self._close(link, 4004)
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or not session.resumable:
            link.answered.append("INVALID_SESSION")
            await self._send(link, {"op": 9, "d": False})
            await self._notify()
            return
        previous = session.link
        if previous is not None:  # the session moves to this connection; the old one ends
            self._detach(previous)
            if not previous.ws.closed:
                await previous.ws.close(code=4000)
        session.link = link
        link.session = session
        first = seq - self.replay_overlap
        for frame in list(session.events):
            if frame["s"] > first:
                await self._send(link, frame)
                link.replayed += 1
        await self._send(link, self._number(session, "RESUMED", {}, keep=False))
        link.answered.append("RESUMED")
        await self._notify()

    def _number(self, session: GatewaySession, event: str, data: JSON, *, keep: bool = True
                ) -> JSON:
        session.seq += 1
        frame: JSON = {"op": 0, "t": event, "s": session.seq, "d": data}
        if keep:
            session.events.append(frame)
        return frame

    async def _send(self, link: GatewayLink, frame: JSON) -> None:
        if link.ws.closed:
            return
        try:
            await link.ws.send_str(json.dumps(frame))
        except (ConnectionResetError, OSError):
            self._detach(link)

    async def _close(self, link: GatewayLink, code: int) -> None:
        link.answered.append(f"close {code}")
        session = link.session
        if session is not None and (code in ENDS_SESSION or code == 4004):
            session.resumable = False
        self._detach(link)
        await link.ws.close(code=code, message=CLOSE_MESSAGES.get(code, "").encode())
        await self._notify()

    @staticmethod
    def _detach(link: GatewayLink) -> None:
        session = link.session
        if session is not None and session.link is link:
            session.link = None
