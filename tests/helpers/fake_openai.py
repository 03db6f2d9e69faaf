"""A fake OpenAI-compatible inference server on 127.0.0.1 for the faults a real one can't
be made to show on demand: 503s, a malformed event stream, a stall, a key refused.

It speaks the wire format of llama.cpp's ``llama-server``: ``/health``, ``/props``,
``/tokenize`` and ``/v1/chat/completions`` streamed as server-sent events (``data:``
lines, then ``data: [DONE]``). Each chat request takes the next scripted ``Answer``
(the default one when the script runs out); every request body is recorded, and
``disconnects`` counts streams the client closed before the end.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Behaviour = Literal["stream", "status", "malformed", "stall", "die"]


@dataclass(frozen=True)
class Answer:
    """How to answer one chat request.

    ``stream``: send ``pieces`` (one every ``interval`` seconds, on the clock), finish,
    ``[DONE]``;
    ``status``: answer ``status`` with ``retry_after`` if set; ``malformed``: send
    ``pieces`` then a line that is not JSON; ``stall``: send ``pieces`` then nothing, ever;
    ``die``: send ``pieces`` then drop the connection.
    """

    behaviour: Behaviour = "stream"
    pieces: Sequence[str] = ("Hello", " there", "!")
    status: int = 200
    retry_after: float | None = None
    interval: float = 0.0
    reasoning: Sequence[str] = ()
    """Sent as ``reasoning_content`` deltas before the pieces."""


@dataclass
class FakeOpenAI:
    """The fake server; ``await start()``, then point a backend at ``url``."""

    slots: int = 1
    n_ctx: int = 2048
    api_key: str | None = None
    chat_key: str | None = None
    """A key only chat requests must carry (probes pass without it), if set."""
    default: Answer = field(default_factory=Answer)
    script: deque[Answer] = field(default_factory=deque)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *answers: Answer) -> None:
        """Script the next chat requests' answers."""
        self.script.extend(answers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/props", self._props)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/tokenize", self._tokenize)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- endpoints ----------------------------------------------------------------------

    def _refused(self, request: web.Request, key: str | None) -> web.Response | None:
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            return web.json_response(
                {"error": {"code": 401, "message": "Invalid API Key",
                           "type": "authentication_error"}}, status=401)
        return None

    async def _health(self, request: web.Request) -> web.Response:
        return self._refused(request, self.api_key) or web.json_response({"status": "ok"})

    async def _props(self, request: web.Request) -> web.Response:
        return self._refused(request, self.api_key) or web.json_response({
            "total_slots": self.slots,
            "default_generation_settings": {"n_ctx": self.n_ctx},
        })

    async def _models(self, request: web.Request) -> web.Response:
        return self._refused(request, self.api_key) or web.json_response(
            {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        words = str(body.get("content", "")).split()
        return web.json_response({"tokens": [hash(w) % 30000 for w in words]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request, self.api_key) or self._refused(request, self.chat_key)
        if refused is not None:
            return refused
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        answer = self.script.popleft() if self.script else self.default
        if answer.behaviour == "status":
            headers = ({"Retry-After": f"{answer.retry_after:g}"}
                       if answer.retry_after is not None else {})
            return web.json_response(
                {"error": {"code": answer.status, "message": "Loading model or busy",
                           "type": "unavailable_error"}},
                status=answer.status, headers=headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for thought in answer.reasoning:
                await _event(response, {"choices": [
                    {"index": 0, "delta": {"reasoning_content": thought},
                     "finish_reason": None}]})
            # Paced on the clock, not by sleeping between pieces: a server's pace does not
            # slow down because the process it shares with the client is busy.
            loop = asyncio.get_running_loop()
            start = loop.time()
            for index, piece in enumerate(answer.pieces, 1):
                if answer.interval:
                    await asyncio.sleep(max(0.0, start + index * answer.interval - loop.time()))
                await _event(response, {"choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            if answer.behaviour == "malformed":
                await response.write(b"data: {\"choices\": [{\"delta\": \n\n")
                await asyncio.sleep(3600)
            elif answer.behaviour == "stall":
                await asyncio.sleep(3600)
            elif answer.behaviour == "die":
                assert request.transport is not None
                request.transport.abort()
                return response
            await _event(response, {"choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}]})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            self.disconnected.set()
            raise
        return response


async def _event(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())
