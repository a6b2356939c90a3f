"""``MockOllama``: the ASGI app served by uvicorn on 127.0.0.1 from a daemon thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import uvicorn

from otel_llm._serve import QuietServer, bind
from otel_llm.testing.mock_ollama._app import _App
from otel_llm.testing.mock_ollama._content import _aliases, _full_name
from otel_llm.testing.mock_ollama._scenario import DEFAULT_MODELS, RecordedRequest, Scenario

_KEEP_ALIVE = 600
"""Seconds an idle keep-alive connection stays open (closed at once on ``stop``)."""


class MockOllama:
    """A real Ollama-shaped HTTP server on 127.0.0.1, run by uvicorn in a daemon thread.

    ``scenarios``, ``default`` and ``models`` may be changed while it runs; each request
    looks them up afresh. ``requests`` records every request received, in order.
    """

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None = None,
        *,
        default: Scenario | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        port: int = 0,
    ) -> None:
        self.scenarios: dict[str, Scenario] = dict(scenarios or {})
        self.default = default if default is not None else Scenario()
        self.models: list[str] = list(models)
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.parallel: int | None = None
        """Like ``OLLAMA_NUM_PARALLEL``: generate/chat requests served at once; the rest
        queue (their reported durations leave the wait out). None: no limit."""
        self.pullable: set[str] | None = None
        """Models ``/api/pull`` finds in the registry; None: any. Others fail mid-stream."""
        self._app = _App(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:11434``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The ``OLLAMA_HOST`` form, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def scenario_for(self, model: str) -> Scenario | None:
        """The scenario answering ``model`` (``:latest`` optional), or None if unknown."""
        names = _aliases(model)
        for name in names:
            if name in self.scenarios:
                return self.scenarios[name]
        listed = {_full_name(m) for m in self.models}
        return self.default if any(_full_name(name) in listed for name in names) else None

    def start(self) -> MockOllama:
        """Bind 127.0.0.1:port (0 = ephemeral), serve from a thread, return once ready."""
        if self._server is not None:
            return self
        sock = bind("127.0.0.1", self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            cast(Any, self._app),
            http="auto",  # h11, or httptools when installed
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
            # Ollama's Go server sets no idle timeout: a client's pooled connection stays
            # open. uvicorn's default (5 s) closes it under a client about to reuse it,
            # which fails a POST mid-write (aiohttp), as a real Ollama never does.
            timeout_keep_alive=_KEEP_ALIVE,
        )
        server = QuietServer(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"mock-ollama-{self.port}"
        )
        thread.daemon = True
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(5)
                sock.close()
                raise RuntimeError(f"mock Ollama did not start on {self.host}")
            time.sleep(0.002)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Shut down gracefully (in-flight streams get 2 s) and join the thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(10)

    def __enter__(self) -> MockOllama:
        return self.start()

    @classmethod
    def from_file(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], *, port: int = 0
    ) -> MockOllama:
        """A mock scripted by a YAML/JSON scenario file (or its dict); see ``load_scenarios``."""
        from otel_llm.testing.mock_ollama._files import load_scenarios  # it builds mocks

        return load_scenarios(source).mock(port=port)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
