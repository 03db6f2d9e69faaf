"""Talking to one OpenAI-compatible server over httpx: streamed chat, tokenize, probes.

Every failure becomes a ``ServerFault`` saying what went wrong in a way the pool can act
on (unreachable, busy, failed, broken mid-stream, too slow, malformed), or one of
cabot's own errors when retrying cannot help (``RemoteAuthError``,
``ContextOverflowError``, ``RemoteServerError`` for a request the server refused).
httpx's exceptions never leave this module, as httpx maps httpcore's at its own edge.

The API key goes in the ``Authorization`` header only: it is never part of a URL, a log
line or an error's text.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.backends.remote.kinds import ServerKind
from bot.errors import ContextOverflowError, RemoteAuthError, RemoteServerError

log = logging.getLogger(__name__)

FaultKind = Literal["unreachable", "busy", "failed", "broken", "timeout", "malformed"]

MAX_ERROR_TEXT = 200
"""Characters of a server's own error message quoted in cabot's."""


class ServerFault(Exception):
    """A server could not serve a request; another server (or a later try) may.

    Never shown to users as is: the backend retries, or turns it into a
    ``RemoteServerError`` with a sentence for them.
    """

    def __init__(self, kind: FaultKind, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delta:
    """One event of a streamed chat completion."""

    content: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None


@dataclass(frozen=True)
class ServerInfo:
    """What a probe learnt: slots (``None``: not reported) and context per slot."""

    slots: int | None = None
    n_ctx: int | None = None


class ServerClient:
    """Requests to one server.

    Args:
        http: the shared httpx client (its timeouts and connection limits).
        url: the server's base URL, with or without a trailing ``/v1``.
        kind: which kind of server it is.
        label: how logs and messages name it (``server 1``), never its URL's secrets.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, kind: ServerKind, label: str) -> None:
        base = url.rstrip("/")
        self.root = base.removesuffix("/v1")
        self.http = http
        self.kind = kind
        self.label = label
        self.url = _without_credentials(self.root)

    # -- chat -----------------------------------------------------------------------

    async def stream_chat(self, body: dict[str, Any]) -> AsyncGenerator[Delta, None]:
        """Stream a chat completion's deltas; closing the generator closes the connection.

        Reasoning deltas (``reasoning_content``, ``reasoning``) are dropped here.

        Raises:
            ServerFault: the server is unreachable, busy, failing, or broke off.
            RemoteAuthError: it refused the API key.
            ContextOverflowError: the prompt does not fit its context.
            RemoteServerError: it refused the request, or its stream is unreadable.
        """
        async with self._request("POST", "/v1/chat/completions", json=body, stream=True) as r:
            finished = False
            events = _events(r)
            try:
                async for data in events:
                    if data == "[DONE]":
                        break
                    delta = self._delta(data)
                    if delta.finish_reason is not None:
                        finished = True
                    yield delta
            except httpx.ReadTimeout as error:
                raise ServerFault("timeout", f"{self.label} sent nothing for too long") from error
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                raise ServerFault("broken", f"{self.label} closed the connection mid-reply: "
                                  f"{type(error).__name__}") from error
            finally:
                await events.aclose()
            if not finished:
                raise ServerFault("broken", f"{self.label} ended the stream before the reply "
                                  "was finished")

    def _delta(self, data: str) -> Delta:
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise ServerFault("malformed", f"{self.label} sent an event that is not JSON: "
                              f"{data[:60]!r}") from None
        if not isinstance(event, dict):
            raise ServerFault("malformed", f"{self.label} sent an event that is not an object")
        if "error" in event:
            raise self._stream_error(event["error"])
        usage = event.get("usage")
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise ServerFault("malformed", f"{self.label} sent an event without choices")
        if not choices:  # the usage-only event at the end
            return Delta(prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None)
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise ServerFault("malformed", f"{self.label} sent a choice without a delta")
        content = delta.get("content")
        reason = choice.get("finish_reason")
        return Delta(
            content=content if isinstance(content, str) else "",
            finish_reason=reason if isinstance(reason, str) else None,
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
        )

    def _stream_error(self, error: object) -> Exception:
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message)[:MAX_ERROR_TEXT]
        if _is_context_error(text):
            return _overflow()
        return ServerFault("failed", f"{self.label} reported an error mid-reply: {text}")

    # -- tokenize and probes ----------------------------------------------------------

    async def tokenize(self, text: str, model: str) -> list[int]:
        """The token ids of ``text`` in the server's model (no BOS, no special parsing).

        Raises:
            ServerFault, RemoteAuthError, RemoteServerError: as for ``stream_chat``.
        """
        body: dict[str, Any]
        if self.kind == "llama-server":
            path, body = "/tokenize", {"content": text, "add_special": False,
                                       "parse_special": False}
        elif self.kind == "llama-cpp-python":
            path, body = "/extras/tokenize", {"input": text, "model": model}
        elif self.kind == "vllm":
            path, body = "/tokenize", {"model": model, "prompt": text,
                                       "add_special_tokens": False}
        else:
            raise RemoteServerError(f"A {self.kind} server has no tokenizer cabot can use.")
        answer = await self._json("POST", path, json=body)
        tokens = answer.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ServerFault("malformed", f"{self.label} answered {path} without token ids")
        return tokens

    async def piece(self, token: int, model: str) -> str:
        """The text of one token of the server's model.

        Raises:
            ServerFault, RemoteAuthError, RemoteServerError: as for ``stream_chat``.
        """
        body: dict[str, Any]
        if self.kind == "llama-server":
            path, body, field = "/detokenize", {"tokens": [token]}, "content"
        elif self.kind == "llama-cpp-python":
            path, body, field = "/extras/detokenize", {"tokens": [token], "model": model}, "text"
        elif self.kind == "vllm":
            path, body, field = "/detokenize", {"model": model, "tokens": [token]}, "prompt"
        else:
            raise RemoteServerError(f"A {self.kind} server has no tokenizer cabot can use.")
        text = (await self._json("POST", path, json=body)).get(field)
        if not isinstance(text, str):
            raise ServerFault("malformed", f"{self.label} answered {path} without text")
        return text

    async def probe(self) -> ServerInfo:
        """Whether the server answers, and its slots and context where it tells them.

        Raises:
            ServerFault: it does not answer (or is still loading: 503).
            RemoteAuthError: it refused the API key.
        """
        if self.kind == "llama-server":
            await self._json("GET", "/health")
            props = await self._json("GET", "/props")
            slots = props.get("total_slots")
            settings = props.get("default_generation_settings")
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            return ServerInfo(slots if isinstance(slots, int) and slots > 0 else None,
                              n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None)
        models = await self._json("GET", "/v1/models")
        n_ctx = None
        data = models.get("data")
        if isinstance(data, list):
            for entry in data:
                if isinstance(entry, dict) and isinstance(entry.get("max_model_len"), int):
                    n_ctx = entry["max_model_len"]  # vLLM tells its context length here
        return ServerInfo(None, n_ctx)

    # -- plumbing -----------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self._request(method, path, **kwargs) as response:
            try:
                await response.aread()
                answer = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise ServerFault("malformed", f"{self.label} answered {path} with something "
                                  "that is not JSON") from error
        if not isinstance(answer, dict):
            raise ServerFault("malformed", f"{self.label} answered {path} without an object")
        return answer

    @contextlib.asynccontextmanager
    async def _request(self, method: str, path: str, *, stream: bool = False,
                       **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """A response with a 2xx status, its body not read yet; closed on exit."""
        request = self.http.build_request(method, self.root + path, **kwargs)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TimeoutException as error:
            raise ServerFault("timeout" if isinstance(error, httpx.ReadTimeout) else "unreachable",
                              f"{self.label} did not answer in time "
                              f"({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise ServerFault("unreachable", f"{self.label} cannot be reached "
                              f"({type(error).__name__})") from error
        try:
            if response.status_code >= 300:
                await self._refuse(response, path)
            yield response
        finally:
            await response.aclose()

    async def _refuse(self, response: httpx.Response, path: str) -> None:
        """Raise what a non-2xx answer means."""
        status = response.status_code
        try:
            await response.aread()
            text = _error_text(response)
        except httpx.HTTPError:
            text = ""
        if status in (401, 403):
            log.error("%s (%s) refused cabot's API key on %s: HTTP %d", self.label, self.url,
                      path, status)
            raise RemoteAuthError(
                "The inference server refused cabot's API key; the operator must check "
                "CABOT_REMOTE_API_KEY."
            )
        if status in (429, 503):
            raise ServerFault("busy", f"{self.label} is busy (HTTP {status})",
                              retry_after=_retry_after(response))
        if status >= 500:
            raise ServerFault("failed", f"{self.label} failed (HTTP {status}): {text}")
        if _is_context_error(text):
            raise _overflow()
        if status == 404:
            raise ServerFault("failed", f"{self.label} has no {path} (HTTP 404): {text}")
        log.warning("%s refused a request on %s: HTTP %d %s", self.label, path, status, text)
        raise RemoteServerError(
            f"The inference server refused the request (HTTP {status}: {text or 'no reason'}); "
            "the operator should check CABOT_REMOTE_MODEL and CABOT_REMOTE_KIND."
        )


async def _events(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The ``data`` of each server-sent event (multi-line data joined; comments skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment, e.g. a keep-alive ping
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "error":
            data.append(json.dumps({"error": value}))
    if data:
        yield "\n".join(data)


def _error_text(response: httpx.Response) -> str:
    """The server's own short reason for refusing, if it gave one."""
    try:
        answer = response.json()
    except ValueError:
        return response.text[:MAX_ERROR_TEXT].strip()
    if isinstance(answer, dict):
        error = answer.get("error", answer.get("detail", answer))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:MAX_ERROR_TEXT]
    return str(answer)[:MAX_ERROR_TEXT]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _is_context_error(text: str) -> bool:
    lowered = text.lower()
    return "context" in lowered and any(
        word in lowered for word in ("exceed", "too long", "maximum", "length", "size"))


def _overflow() -> ContextOverflowError:
    return ContextOverflowError(
        "The conversation is too long for the inference server's context window; "
        "start a new topic or ask the operator to raise the server's context size."
    )


def _without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part, for logs."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url
