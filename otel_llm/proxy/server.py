"""Run the proxy: two uvicorn servers (clients, admin) on one event loop.

``main`` is ``otel-llm proxy``: it resolves the configuration, sets up telemetry with
``otel_llm.instrument()`` (the upstream is labelled an Ollama server), and serves in the
foreground until SIGTERM/SIGINT. Shutdown is graceful: ``/readyz`` turns 503, the client
port stops accepting, in-flight streams get ``shutdown_timeout`` seconds to finish and
are then cancelled (their spans end), the admin port closes last, spans are flushed.
A second signal cuts the wait short.

``ProxyServer`` runs the same thing from a thread, for tests, demos and benchmarks.

uvicorn was chosen over granian by measurement (docs/proxy.md): with httptools and
uvloop it adds the least latency per request of the two on this workload, runs in
process (so in-process span assertions and one event loop for both ports are easy),
and lets us see the raw request target to refuse absolute-form requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import httpx
import structlog
import uvicorn

from otel_llm._serve import QuietServer, bind
from otel_llm.proxy.admin import AdminApp, build_registry
from otel_llm.proxy.app import ProxyApp
from otel_llm.proxy.config import ConfigError, ProxyConfig, check, parse_args
from otel_llm.proxy.forward import make_client
from otel_llm.proxy.protocol import Limits, http_protocol

__all__ = ["ProxyServer", "Telemetry", "http_protocol", "main", "setup_telemetry"]

_logger = logging.getLogger("otel_llm.proxy")


def _uvicorn_config(
    app: Any, protocol: type[asyncio.Protocol], shutdown_timeout: float, limits: Limits
) -> Any:
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="off",
        loop="none",
        log_config=None,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* pass through untouched; we trust no client
        server_header=False,  # the upstream's headers, not ours
        date_header=False,
        timeout_graceful_shutdown=cast(int, shutdown_timeout),  # a float works (wait_for)
        backlog=2048,
        timeout_keep_alive=cast(int, limits.idle_timeout),  # a float works (call_later)
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


@dataclass
class Telemetry:
    """Providers the proxy reports to, and the reader ``/metrics`` serves."""

    tracer_provider: Any = None
    meter_provider: Any = None
    reader: Any = None


class _Runner:
    """Both servers and the upstream client; ``run`` returns once shut down."""

    def __init__(
        self,
        config: ProxyConfig,
        sockets: tuple[socket.socket, socket.socket | None],
        telemetry: Telemetry,
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.telemetry = telemetry
        self.stop = asyncio.Event()
        self.started = threading.Event()
        self.servers: list[Any] = []
        self.app: ProxyApp | None = None
        self.admin: AdminApp | None = None

    def force(self) -> None:
        """Stop waiting for in-flight requests."""
        for server in self.servers:
            server.force_exit = True

    async def run(self) -> None:
        config, telemetry = self.config, self.telemetry
        client = make_client(config.connect_timeout, config.timeout, keepalive=1)  # /readyz
        app = self.app = ProxyApp(
            config,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        limits = config.limits
        main = QuietServer(
            _uvicorn_config(
                app, http_protocol(config.http, limits), config.shutdown_timeout, limits
            )
        )
        self.servers.append(main)
        tasks = [asyncio.ensure_future(main.serve(sockets=[self.sockets[0]]))]
        admin = None
        if self.sockets[1] is not None:
            self.admin = AdminApp(client, config.upstream, build_registry(telemetry.reader))
            admin = QuietServer(
                _uvicorn_config(self.admin, http_protocol("h11", limits), 1.0, limits)
            )
            self.servers.append(admin)
            tasks.append(asyncio.ensure_future(admin.serve(sockets=[self.sockets[1]])))
        try:
            while not all(s.started for s in self.servers):
                if any(t.done() for t in tasks):
                    raise RuntimeError("otel-llm proxy: a server failed to start")
                await asyncio.sleep(0.005)
            self.started.set()
            stopping = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if self.admin is not None:
                self.admin.draining = True
            main.should_exit = True
            await tasks[0]
            if admin is not None:
                admin.should_exit = True
                await tasks[1]
        finally:
            for task in tasks:
                task.cancel()
            await app.client.aclose()
            await client.aclose()


def _new_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _run_loop(loop: asyncio.AbstractEventLoop, main: Callable[[], Any]) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class ProxyServer:
    """The proxy in a background thread: ``start()``, ``.url``, ``.admin_url``, ``stop()``.

    ``otel_llm.instrument()`` must have been called for LLM calls to get GenAI spans
    (``main`` does it); spans and metrics go to the given providers, else the global ones.
    """

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        metrics_reader: Any = None,
    ) -> None:
        self.config = config or ProxyConfig(listen=("127.0.0.1", 0), admin=("127.0.0.1", 0))
        check(self.config)
        self.telemetry = Telemetry(tracer_provider, meter_provider, metrics_reader)
        self._runner: _Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL clients use, e.g. ``http://127.0.0.1:11435``."""
        return self.config.listen_url

    @property
    def admin_url(self) -> str:
        url = self.config.admin_url
        if url is None:
            raise RuntimeError("the admin port is off")
        return url

    @property
    def active_requests(self) -> int:
        """Requests in flight right now (0 once every span of every answered request ended)."""
        runner = self._runner
        return runner.app.active if runner is not None and runner.app is not None else 0

    def start(self) -> ProxyServer:
        """Bind both ports (0 = ephemeral), serve from a thread, return once accepting."""
        if self._thread is not None:
            return self
        main_sock = bind(*self.config.listen)
        admin_sock = None
        try:
            if self.config.admin is not None:
                admin_sock = bind(*self.config.admin)
        except OSError:
            main_sock.close()
            raise
        listen = main_sock.getsockname()[:2]
        admin = admin_sock.getsockname()[:2] if admin_sock is not None else None
        self.config = replace(self.config, listen=listen, admin=admin)
        self._loop = loop = _new_loop(self.config.loop)
        runner = self._runner = _Runner(self.config, (main_sock, admin_sock), self.telemetry)
        self._thread = threading.Thread(
            target=_run_loop,
            args=(loop, runner.run),
            name=f"otel-llm-proxy-{listen[1]}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not runner.started.wait(0.01):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"otel-llm proxy did not start on {self.url}")
        return self

    def stop(self, *, force: bool = False) -> None:
        """Graceful shutdown (in-flight streams get ``shutdown_timeout``), then join."""
        runner, loop, thread = self._runner, self._loop, self._thread
        self._runner = self._loop = self._thread = None
        if runner is None or loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(runner.stop.set)
            if force:
                loop.call_soon_threadsafe(runner.force)
        thread.join(self.config.shutdown_timeout + 10)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def setup_telemetry(config: ProxyConfig) -> Telemetry:
    """Providers from the standard ``OTEL_*`` environment, a Prometheus reader, and
    ``otel_llm.instrument()`` with the upstream known as an Ollama server."""
    import otel_llm
    from otel_llm import _setup

    os.environ.setdefault("OTEL_SERVICE_NAME", "otel-llm-proxy")
    reader: Any = None
    try:
        from otel_llm.prometheus import PrometheusReader
    except ImportError:  # pragma: no cover - the metrics work not there
        pass
    else:
        reader = PrometheusReader()
    meter_provider = _setup.meter_provider(extra_readers=[reader] if reader is not None else None)
    tracer_provider = _setup.tracer_provider()
    upstream = httpx.URL(config.upstream)
    port = upstream.port or (443 if upstream.scheme == "https" else 80)
    otel_llm.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        ollama_hosts=[f"{upstream.host}:{port}"],
    )
    return Telemetry(tracer_provider, meter_provider, reader)


def configure_logging(config: ProxyConfig) -> None:
    """structlog for the access log (JSON lines or console), stdlib logging for the rest."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if config.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``otel-llm proxy``: serve in the foreground until SIGTERM/SIGINT."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_args(args)
    except ConfigError as exc:
        sys.stderr.write(f"otel-llm proxy: {exc}\n")
        return 2
    configure_logging(config)
    try:
        sockets = (
            bind(*config.listen),
            bind(*config.admin) if config.admin is not None else None,
        )
    except OSError as exc:
        sys.stderr.write(f"otel-llm proxy: cannot listen: {exc}\n")
        return 1
    config = replace(
        config,
        listen=sockets[0].getsockname()[:2],
        admin=sockets[1].getsockname()[:2] if sockets[1] is not None else None,
    )
    telemetry = setup_telemetry(config)
    log = structlog.get_logger("otel_llm.proxy")
    if config.listen[0] not in ("127.0.0.1", "::1"):
        log.warning("listening beyond loopback", listen=config.listen_url)
    loop = _new_loop(config.loop)
    runner = _Runner(config, sockets, telemetry)

    def on_signal() -> None:
        if runner.stop.is_set():
            runner.force()
        runner.stop.set()

    async def serve() -> None:
        running = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(sig, on_signal)
        starting = asyncio.ensure_future(runner.run())
        while not runner.started.is_set() and not starting.done():
            await asyncio.sleep(0.01)
        if runner.started.is_set():
            log.info(
                "proxy started",
                listen=config.listen_url,
                upstream=config.upstream,
                admin=config.admin_url,
                auth=config.auth,
                max_body=config.max_body,
            )
        await starting
        log.info("proxy stopped")

    try:
        _run_loop(loop, serve)
    finally:
        for provider in (telemetry.tracer_provider, telemetry.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                with contextlib.suppress(Exception):
                    flush()
    return 0
