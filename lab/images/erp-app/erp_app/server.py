"""The ``serve`` command: uvicorn with a graceful, load-balancer-friendly shutdown.

Debian 12's uvicorn (0.17.6) predates ``timeout_graceful_shutdown``, so the
shutdown sequence is built here on uvicorn's own ``should_exit``/``force_exit``:

1. SIGTERM: readiness turns 503 at once, but the server keeps accepting and
   serving for ERP_SHUTDOWN_DRAIN_SECONDS, so a load balancer notices and
   drains without refused connections.
2. Then uvicorn stops accepting, closes idle keep-alive connections and waits
   for in-flight requests.
3. ERP_SHUTDOWN_GRACE_SECONDS after SIGTERM, whatever is still running is
   abandoned and the process exits 0 anyway.

SIGINT (or a second SIGTERM) skips the drain; a further signal forces the exit.
"""

import asyncio
import logging
import os
import signal
import sys
import time

import uvicorn

from erp_app.config import Settings, redact_url
from erp_app.db import Database
from erp_app.lifecycle import Lifecycle
from erp_app.migrations import target_version
from erp_app.web import Runtime, create_app

log = logging.getLogger("erp_app")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain: float, grace: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain = drain
        self.grace = grace

    def handle_exit(self, sig, frame) -> None:
        # uvicorn registers this with loop.add_signal_handler: it runs in the loop.
        loop = asyncio.get_running_loop()
        name = signal.Signals(sig).name
        if self.should_exit:
            self._force(f"{name} while stopping")
            return
        if not self.lifecycle.draining:
            self.lifecycle.begin_drain()
            loop.call_later(self.grace, self._force, "grace period over")
            if sig == signal.SIGTERM and self.drain > 0:
                log.info(
                    "SIGTERM: draining for %.1f s (ready answers 503), then stopping; hard stop after %.1f s",
                    self.drain,
                    self.grace,
                )
                loop.call_later(self.drain, self._stop)
                return
        self._stop()

    def _stop(self) -> None:
        if not self.should_exit:
            log.info("stopping: no new connections, finishing in-flight requests")
            self.should_exit = True

    def _force(self, reason: str) -> None:
        log.warning("%s: exiting with requests still in flight", reason)
        self.force_exit = True


def configure_logging(level: str) -> None:
    """One line per record on stdout, UTC timestamps; uvicorn's loggers included."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def serve(settings: Settings) -> int:
    reason = settings.fault.crash_reason()
    if reason:
        print(f"erp-app serve: {reason}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level)
    log.info(
        "erp-app %s (fault %s) on port %d, database %s, needs schema %s",
        settings.version,
        settings.fault.mode,
        settings.port,
        redact_url(settings.database_url),
        target_version(settings.version),
    )
    lifecycle = Lifecycle()
    runtime = Runtime(settings, Database(settings.database_url), lifecycle)
    config = uvicorn.Config(
        create_app(runtime),
        host="0.0.0.0",  # noqa: S104 - a container must listen on its network interface
        port=settings.port,
        log_config=None,  # keep the logging set up above
        access_log=False,  # the app logs each request itself, with its route
        server_header=False,
    )
    server = DrainingServer(
        config,
        lifecycle,
        settings.shutdown_drain_seconds,
        settings.shutdown_grace_seconds,
    )
    server.run()
    if server.force_exit:
        # Worker threads of abandoned requests are not daemons and would keep
        # the interpreter alive past the grace period.
        logging.shutdown()
        os._exit(0)
    log.info("stopped")
    return 0
