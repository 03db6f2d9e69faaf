"""Health checks of a pool's inference servers: probe idle and failed ones, record what
they answer (a dead server taken out, a server that answers again put back)."""

from __future__ import annotations

import asyncio
import logging

from bot.backends.remote.client import ServerFault
from bot.backends.remote.kinds import KindTraits
from bot.backends.remote.pool import Server, ServerPool
from bot.errors import InferenceError, RemoteAuthError

log = logging.getLogger(__name__)


class HealthChecks:
    """The health-check half of ``RemoteBackend`` (which sets these attributes)."""

    pool: ServerPool | None
    traits: KindTraits
    _n_ctx: int
    _health_interval: float

    def _record(self, pool: ServerPool, server: Server, fault: ServerFault) -> None:
        if fault.kind == "busy":
            pool.mark_busy(server, fault.retry_after)
        elif fault.kind in ("unreachable", "broken", "timeout", "failed"):
            pool.mark_down(server, fault.detail)

    async def _probe(self, server: Server) -> None:
        """Probe ``server`` and record what it said (its own failures are recorded too)."""
        assert self.pool is not None
        lease = self.pool.try_lease(server) if self.traits.exclusive else None
        if self.traits.exclusive and lease is None:
            return  # a job runs there: any request would interrupt it
        try:
            info = await server.client.probe()
        except ServerFault as fault:
            if fault.kind == "busy" and server.alive is None:
                log.info("%s is still loading", server.label)
            self.pool.mark_down(server, fault.detail)
            return
        except RemoteAuthError:
            self.pool.mark_down(server, "it refused the API key")
            raise
        except InferenceError as error:
            self.pool.mark_down(server, str(error))
            return
        finally:
            if lease is not None:
                self.pool.release(lease)
        slots = info.slots if self.traits.slots else None
        self.pool.mark_up(server, slots=slots, n_ctx=info.n_ctx)
        if server.n_ctx is not None and server.n_ctx < self._n_ctx:
            log.warning("%s has a context of %d tokens per slot, less than CABOT_N_CTX=%d: "
                        "long conversations are cut to fit it", server.label, server.n_ctx,
                        self._n_ctx)

    async def _check_health(self) -> None:
        """Probe idle and failed servers every ``health_interval`` seconds."""
        assert self.pool is not None
        while True:
            await asyncio.sleep(self._health_interval)
            idle = [s for s in self.pool.servers if s.in_flight == 0 or s.alive is False]
            results = await asyncio.gather(*(self._probe(s) for s in idle),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, InferenceError):
                    log.error("health check failed", exc_info=result)
