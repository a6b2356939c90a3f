"""``LLMInstrumentor``: the contrib-shaped door (``opentelemetry-instrument`` loads it too)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.dependencies import (
    DependencyConflict,
    get_dependency_conflicts,
)
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_llm import _config, _frontends, _metrics_setup, _patch, _setup, _state, prometheus
from otel_llm._span_writer import SpanWriter
from otel_llm._types import LLMCall
from otel_llm.package import _instruments, _instruments_any
from otel_llm.version import __version__

__all__ = ["LLMInstrumentor"]

_HTTPX_MODULES = ("httpx", "httpx2")
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


class LLMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments httpx, httpx2, requests and aiohttp (whichever are installed) for LLM calls."""

    _http_instrumentors: list[Any]
    _metrics: _metrics_setup.MetricsSetup | None = None
    """What ``instrument()`` started for metrics (readers, endpoint, polling); stopped
    by ``uninstrument()``."""

    @property
    def endpoint(self) -> prometheus.Endpoint | None:
        """The running Prometheus endpoint, if ``instrument()`` started one."""
        return self._metrics.endpoint if self._metrics is not None else None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        return get_dependency_conflicts(_instruments, _instruments_any)

    def _instrument(self, **kwargs: Any) -> None:
        """Keywords as for ``otel_llm.instrument()`` (``_config.Options``)."""
        options = _config.Options.of(**kwargs)
        tracer_provider = options.tracer_provider or _setup.tracer_provider(options.traces_exporter)
        settings = _config.resolve(options)
        tracer = trace.get_tracer(
            "otel_llm", __version__, tracer_provider=tracer_provider, schema_url=SCHEMA_URL
        )
        self._metrics = _metrics_setup.build_metrics(
            _config.resolve_metrics(options), settings, options.meter_provider
        )
        sinks: list[Callable[[LLMCall], None]] = list(self._metrics.sinks)
        if options.sinks:
            sinks.extend(options.sinks)
        _state.current = _state.State(
            tracer=tracer, settings=settings, spans=SpanWriter(tracer), sinks=tuple(sinks)
        )
        for name in _HTTPX_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            _patch.patch(module)
        _frontends.patch_all()  # requests, aiohttp
        self._http_instrumentors = []
        if settings.http_spans:
            self._start_http_spans(tracer_provider, options.meter_provider)

    def _start_http_spans(self, tracer_provider: Any, meter_provider: Any) -> None:
        """opentelemetry-instrumentation-httpx's spans become children of ours (costly: opt-in)."""
        from opentelemetry.instrumentation import httpx as contrib

        for name in _patch.patched_modules():
            cls = (
                contrib.HTTPXClientInstrumentor
                if name == "httpx"
                else getattr(contrib, "HTTPX2ClientInstrumentor", None)
            )
            if cls is None:
                continue
            instrumentor = cls()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(
                    tracer_provider=tracer_provider, meter_provider=meter_provider
                )
                self._http_instrumentors.append(instrumentor)

    def _uninstrument(self, **kwargs: Any) -> None:
        _state.current = None
        _patch.unpatch()
        _frontends.unpatch_all()
        if self._metrics is not None:  # pending metrics, the endpoint, polling, added readers
            self._metrics.stop()
            self._metrics = None
        for instrumentor in getattr(self, "_http_instrumentors", []):
            instrumentor.uninstrument()
        self._http_instrumentors = []
