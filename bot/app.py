"""The application object: starts the store, the engine and every adapter; stops them in reverse."""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.adapter import Adapter
from bot.backends.base import Backend, ContextWindow
from bot.budgets import Budgets, DailyLimits
from bot.errors import ConfigError, ProfileError
from bot.flood import FloodGuard
from bot.personal import PersonalLayers
from bot.queue import InferenceQueue
from bot.resolution import ProfileResolver
from bot.router import ChatLimits, Router
from bot.settings import Settings
from bot.store import Store
from profiles import Library, load_builtin_library
from profiles.bounds import Bound, compose_bounded

log = logging.getLogger(__name__)

FINAL_DELIVERY = 1.5
"""Seconds stopped replies get to deliver their final text when a graceful stop runs out."""


def create_backend(settings: Settings) -> Backend:
    """The inference backend the settings ask for (``CABOT_BACKEND``, ``CABOT_ENGINE``)."""
    if settings.backend == "remote":
        from bot.backends.remote import RemoteBackend

        return RemoteBackend(
            settings.remote_urls,
            kind=settings.remote_kind,
            model=settings.remote_model,
            api_key=settings.remote_api_key,
            parallel=settings.remote_parallel,
            n_ctx=settings.n_ctx,
            read_timeout=settings.remote_read_timeout,
            health_interval=settings.remote_health_interval,
        )
    if settings.engine == "batched":
        from bot.backends.batched import BatchedBackend

        return BatchedBackend(
            settings.model_path(),
            n_ctx=settings.n_ctx,
            parallel=settings.parallel,
            resident=settings.resident_channels,
            n_threads=settings.n_threads,
            chat_format=settings.chat_format,
            kv_tokens=settings.kv_tokens,
            kv_type=settings.kv_type,
            flash_attn=FLASH_ATTN[settings.flash_attn],
        )
    from bot.backends.llama import LlamaBackend

    return LlamaBackend(
        settings.model_path(),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        cache_bytes=settings.prompt_cache_mb << 20,
        chat_format=settings.chat_format,
        flash_attn=FLASH_ATTN[settings.flash_attn],
    )


FLASH_ATTN: dict[str, bool] = {"auto": False, "on": True, "off": False}
"""``CABOT_FLASH_ATTN`` for the engines (auto is off: see ``BatchedBackend``)."""


GC_THRESHOLDS = (10_000, 20, 20)
"""Allocations between two collections of the youngest generation, and collections of
each generation between two of the next (CPython's defaults: 700, 10, 10)."""


def freeze_start_up_objects() -> None:
    """Take what is alive once the bot has started out of the cyclic garbage collector's
    sight (``gc.freeze``), and let it collect less often (`GC_THRESHOLDS`).

    The library, the modules and their schemas live as long as the process; without this
    every full collection walks them again (a third of the heap of a bot in 10,000
    communities, tens of milliseconds each time). Reference counting still frees whatever
    of it is dropped, and nearly everything a reply allocates goes that way; at the
    default thresholds the collector ran after every few messages and took 31 µs a message
    at 30 channels and 67 at 30,000 in the routing bench (5 and 24 with these). Called once
    by ``cabot run`` after the app started.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def check_floor(library: Library, settings: Settings) -> None:
    """Fail at start-up when the default profile or the operator's floor cannot work.

    Raises:
        ConfigError: naming the setting, what is wrong and what to do.
    """
    default = library.profile(settings.default_profile)
    try:
        floor = library.stack(settings.floor_layers)
    except ProfileError as error:
        raise ConfigError(f"CABOT_FLOOR_LAYERS: {error}") from None
    bounds = [Bound(layer, "floor", "the operator") for layer in floor]
    try:
        compose_bounded(library.stack(default.layers), bounds)
    except ProfileError as error:
        raise ConfigError(
            f"CABOT_FLOOR_LAYERS cannot be composed with the default profile "
            f"{default.name!r}: {error}"
        ) from None


class App:
    """Everything cabot runs, wired together once from the settings.

    Args:
        settings: the configuration.
        backend: the inference backend (default: from the settings).
        store: the store (default: the SQLite file in the settings).
        library: the layer library (default: built-ins plus ``CABOT_LAYERS_DIR``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        store: Store | None = None,
        library: Library | None = None,
    ) -> None:
        self.settings = settings
        self.library = library if library is not None else load_builtin_library(
            settings.layers_dir
        )
        for problem in self.library.problems:
            log.error("skipped a layer file: %s", problem)
        check_floor(self.library, settings)  # fail fast on a bad default or floor
        self.store = store if store is not None else Store(settings.db)
        self.backend = backend if backend is not None else create_backend(settings)
        self.queue = InferenceQueue(
            self.backend,
            max_pending=settings.queue_max,
            max_per_channel=settings.queue_per_channel,
            user_rate=settings.user_rate,
            user_window=settings.user_rate_window,
            job_timeout=settings.job_timeout,
        )
        self.resolver = ProfileResolver(
            self.store.alignment, self.library, settings.default_profile,
            floor=settings.floor_layers,
        )
        self.resolver.personal = PersonalLayers(self.store.members)
        self.budgets = Budgets(self.store.usage, DailyLimits(
            settings.user_daily_tokens, settings.community_daily_tokens))
        self.router = Router(
            self.store,
            self.resolver,
            self.queue,
            self.backend,
            ChatLimits(settings.n_ctx, settings.reply_tokens, settings.history_messages),
            flood=FloodGuard(settings.flood_messages, settings.user_rate_window),
            budgets=self.budgets,
            switch_probes=settings.switch_probes,
        )
        self.adapters: list[Adapter] = []
        self._started: list[str] = []

    async def start(self, adapters: Sequence[Adapter] = ()) -> None:
        """Open the store, load the model, start the queue, then connect each adapter."""
        await self.store.open()
        self._started.append("store")
        await self.backend.start()
        self._started.append("backend")
        if isinstance(self.backend, ContextWindow):
            self.router.fit_window(self.backend.n_ctx)
        await self.queue.start()
        self._started.append("queue")
        for adapter in adapters:
            await adapter.start(self.router.sink_for(adapter))
            self.adapters.append(adapter)
            log.info("%s adapter started", adapter.name)

    async def shutdown(self, grace: float) -> None:
        """Stop gracefully: take no new messages, let replies finish up to ``grace`` seconds.

        Replies still running then are stopped and deliver what they have, with a word to
        the user; then everything stops as in :meth:`stop`.
        """
        self.router.close()
        if not await self.router.settle(grace):
            log.warning("stopping %d replies still in progress after %.0f s",
                        self.router.in_progress, grace)
            await self.queue.stop()
            await self.router.settle(FINAL_DELIVERY)
        await self.stop()

    async def stop(self) -> None:
        """Stop everything that started, in reverse order."""
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("%s adapter failed to stop cleanly", adapter.name)
        self.adapters.clear()
        # Each part stops even when one before it failed: above all the store, whose
        # connection thread would otherwise keep the process from exiting.
        parts: list[tuple[str, Callable[[], Awaitable[None]]]] = [("router", self.router.stop)]
        if "queue" in self._started:
            parts.append(("queue", self.queue.stop))
        if "backend" in self._started:
            parts.append(("backend", self.backend.stop))
        if "store" in self._started:
            parts.append(("store", self.store.close))
        for name, stop in parts:
            try:
                await stop()
            except Exception:
                log.exception("the %s failed to stop cleanly", name)
        self._started.clear()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
