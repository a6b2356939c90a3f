"""Model residency: which models Ollama holds in memory, polled from ``GET /api/ps``.

Off by default (``instrument(ollama_residency=True)``). Nothing polls in the
background: the observable gauges' callbacks poll when a reader collects (an OTLP
export, a Prometheus scrape), with a short timeout, and share one answer per
collection. The poll uses ``_ollama_http`` (the stdlib client) under
``suppress_instrumentation``: it is never an LLM call and never an HTTP span.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

from otel_llm import instruments
from otel_llm import semconv as sc
from otel_llm._config import OLLAMA_DEFAULT_PORT, Settings, parse_ollama_host
from otel_llm._ollama_http import request_json
from otel_llm.adapters.ollama import PS_PATH, Loaded, parse_ps

__all__ = ["Loaded", "Residency", "parse_ps", "start"]

_logger = logging.getLogger("otel_llm")

DEFAULT_TIMEOUT = 0.5
"""Seconds a poll may take: it runs inside a metric collection."""


class Residency:
    """Polls each Ollama server at most once per ``ttl`` seconds; answers the gauges."""

    def __init__(
        self,
        hosts: Callable[[], Iterable[str]],
        model_label: Callable[[str], str],
        timeout: float = DEFAULT_TIMEOUT,
        ttl: float = 1.0,
    ) -> None:
        self._hosts = hosts
        self._model_label = model_label
        self._timeout = timeout
        self._ttl = ttl
        self._lock = threading.Lock()
        self._polled_at = float("-inf")
        self._answer: list[tuple[str, int, list[Loaded]]] = []

    def close(self) -> None:
        """Nothing to release: each poll opens and closes its own connection."""

    def poll(self) -> list[tuple[str, int, list[Loaded]]]:
        """``(address, port, models)`` for every server that answered, cached for ``ttl``."""
        with self._lock:
            now = time.monotonic()
            if now - self._polled_at < self._ttl:
                return self._answer
            answer = []
            for host in self._hosts():
                address, port = _split(host)
                models = self._fetch(address, port)
                if models is not None:
                    answer.append((address, port, models))
            self._answer, self._polled_at = answer, time.monotonic()
            return answer

    def _fetch(self, address: str, port: int) -> list[Loaded] | None:
        try:
            with suppress_instrumentation():
                return parse_ps(request_json(address, port, PS_PATH, timeout=self._timeout))
        except Exception as exc:  # down, slow or not Ollama: no observations this time
            _logger.debug("otel_llm: /api/ps on %s:%s failed: %r", address, port, exc)
            return None

    def observe(self, what: str) -> Iterator[Observation]:
        """Observations of one gauge: ``loaded`` (per server) or ``size``/``vram``/``unload``."""
        now = time.time()
        for address, port, models in self.poll():
            server: dict[str, AttributeValue] = {sc.SERVER_ADDRESS: address, sc.SERVER_PORT: port}
            if what == "loaded":
                yield Observation(len(models), server)
                continue
            for model in models:
                attrs = {**server, sc.RESPONSE_MODEL: self._model_label(model.name)}
                if what == "size":
                    yield Observation(model.size, attrs)
                elif what == "vram":
                    yield Observation(model.size_vram, attrs)
                elif what == "unload" and model.expires_at is not None:
                    yield Observation(max(0.0, model.expires_at - now), attrs)


def _split(host: str) -> tuple[str, int]:
    address, _, port = host.rpartition(":")
    if not address or not port.isdigit():
        return host, OLLAMA_DEFAULT_PORT
    return address, int(port)


def _host_source(spec: Any, settings: Settings) -> Callable[[], Iterable[str]]:
    """Which servers to poll.

    ``True``: the configured Ollama servers (else 127.0.0.1:11434); a list: those
    ``host[:port]``; a callable returning such a list: asked at every poll.
    """
    if callable(spec):
        source: Callable[[], Iterable[str]] = spec

        def asked() -> Iterable[str]:
            return [h for h in (parse_ollama_host(str(raw)) for raw in source()) if h]

        return asked
    if isinstance(spec, (list, tuple, set, frozenset)):
        fixed = sorted({h for h in (parse_ollama_host(str(raw)) for raw in spec) if h})
    else:
        fixed = sorted(settings.ollama_hosts) or [f"127.0.0.1:{OLLAMA_DEFAULT_PORT}"]
    return lambda: fixed


# The gauges live as long as their MeterProvider; their callbacks read whichever
# Residency the current instrument() started, so re-instrumenting needs no new gauges.
_current: Residency | None = None
_meters: weakref.WeakSet[Meter] = weakref.WeakSet()


def _callback(what: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        residency = _current
        return list(residency.observe(what)) if residency is not None else []

    return observe


def start(
    meter: Meter, spec: Any, settings: Settings, model_label: Callable[[str], str]
) -> Callable[[], None]:
    """Register the gauges on ``meter`` (once) and start answering them; returns the stop."""
    global _current
    residency = Residency(_host_source(spec, settings), model_label)
    _current = residency
    if meter not in _meters:
        _meters.add(meter)
        for spec_, what in (
            (instruments.MODELS_LOADED, "loaded"),
            (instruments.MODEL_SIZE, "size"),
            (instruments.MODEL_VRAM_SIZE, "vram"),
            (instruments.MODEL_TIME_TO_UNLOAD, "unload"),
        ):
            meter.create_observable_gauge(
                spec_.name,
                callbacks=[_callback(what)],
                unit=spec_.unit,
                description=spec_.description,
            )

    def stop() -> None:
        global _current
        if _current is residency:
            _current = None
        residency.close()

    return stop
