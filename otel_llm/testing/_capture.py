"""In-memory capture of LLM spans and GenAI metrics: what the ``llm_trace`` fixture yields.

OpenTelemetry lets a process set the global ``TracerProvider`` once, and the chain
helpers (``otel_llm.workflow`` ...) use the global one. So, like logfire's ``capfire``,
the first capture installs a global provider (incremental ids: trace 1, span 1, 2, ...)
whose one processor forwards every ended span to the captures active at that moment;
if the app or a conftest already installed an SDK provider, the forwarder is added to
that one instead. Each capture instruments otel_llm with that provider and a private
``MeterProvider`` (an ``InMemoryMetricReader``), and uninstruments it at the end. The
global meter provider is never touched.

Outside pytest::

    with otel_llm.testing.capture() as cap:
        app.answer("Why is the sky blue?")
    cap.llm_calls(operation="chat").assert_count(1)
"""

from __future__ import annotations

import itertools
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from otel_llm import semconv as sc
from otel_llm.testing import _problems, otlp_json
from otel_llm.testing._model import from_readable, nanoseconds
from otel_llm.testing._problems import MetricPoint
from otel_llm.testing._select import Index
from otel_llm.testing._view import TraceView

__all__ = ["VOLATILE_ATTRIBUTES", "CaptureLLM", "IncrementalIdGenerator", "capture"]

VOLATILE_ATTRIBUTES: Final = (
    sc.SERVER_PORT,
    sc.RESPONSE_TIME_TO_FIRST_CHUNK,
    sc.OLLAMA_WAIT_DURATION,
)
"""Attributes ``as_dicts()`` replaces by ``"<volatile>"``: the mock's port, client timings."""


class IncrementalIdGenerator(IdGenerator):
    """Trace ids 1, 2, ... and span ids 1, 2, ... (reset at each capture): stable snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._traces = itertools.count(1)
            self._spans = itertools.count(1)

    def generate_span_id(self) -> int:
        with self._lock:
            return next(self._spans)

    def generate_trace_id(self) -> int:
        with self._lock:
            return next(self._traces)


class _Forwarder(SpanProcessor):
    """Hands each ended span to the active captures; does nothing between captures."""

    def __init__(self) -> None:
        self.active: list[CaptureLLM] = []

    def on_end(self, span: ReadableSpan) -> None:
        for cap in list(self.active):
            cap.exporter.export((span,))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_lock = threading.RLock()
_forwarder = _Forwarder()
_ids = IncrementalIdGenerator()
_own: list[Any] = []  # [provider] once we installed the global one
_fallback: list[Any] = []
_attached: weakref.WeakSet[Any] = weakref.WeakSet()


def _provider() -> tuple[Any, bool]:
    """(the TracerProvider LLM spans go through, whether its ids are ours)."""
    with _lock:
        current: Any = trace.get_tracer_provider()
        if _own and current is _own[0]:
            return current, True
        if isinstance(current, trace.ProxyTracerProvider):
            provider = TracerProvider(id_generator=_ids, resource=Resource.create())
            provider.add_span_processor(_forwarder)
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is provider:
                _own.append(provider)
                return provider, True
            current = trace.get_tracer_provider()
        add = getattr(current, "add_span_processor", None)
        if callable(add):
            if current not in _attached:
                add(_forwarder)
                _attached.add(current)
            return current, False
        if not _fallback:
            warnings.warn(
                f"otel_llm.testing: the global TracerProvider ({type(current).__name__}) takes no"
                " span processors, so spans of otel_llm.workflow/agent/tool are not captured",
                stacklevel=3,
            )
            fallback = TracerProvider(id_generator=_ids, resource=Resource.create())
            fallback.add_span_processor(_forwarder)
            _fallback.append(fallback)
        return _fallback[0], True


def _points(reader: InMemoryMetricReader) -> list[MetricPoint]:
    data = reader.get_metrics_data()
    out: list[MetricPoint] = []
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    if isinstance(point, HistogramDataPoint):
                        extra = {
                            "min": point.min,
                            "max": point.max,
                            "bucket_counts": list(point.bucket_counts),
                            "explicit_bounds": list(point.explicit_bounds),
                        }
                        out.append(
                            MetricPoint(
                                metric.name, attrs, "histogram", point.sum, point.count, extra
                            )
                        )
                    elif isinstance(point, ExponentialHistogramDataPoint):
                        out.append(
                            MetricPoint(metric.name, attrs, "histogram", point.sum, point.count)
                        )
                    elif isinstance(point, NumberDataPoint):
                        kind = "sum" if isinstance(metric.data, Sum) else "gauge"
                        out.append(MetricPoint(metric.name, attrs, kind, point.value))
    return out


def _key(point: MetricPoint) -> tuple[str, frozenset[tuple[str, Any]]]:
    return point.name, frozenset(point.attributes.items())


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(eq=False)
class CaptureLLM(TraceView):
    """Spans and metrics of one test; every query reads what has finished so far.

    Queries and assertions are ``TraceView``'s (``llm_calls``, ``assert_shape``, ...).
    """

    exporter: InMemorySpanExporter
    """Every span that ended during the capture, in end order."""
    metrics_reader: InMemoryMetricReader
    """The reader of ``meter_provider``."""
    tracer_provider: Any
    """The provider otel_llm was instrumented with (the global one)."""
    meter_provider: MeterProvider
    """A private provider: the global meter provider is not touched."""
    capture_content: bool = False
    """Whether prompts and completions may be recorded in this capture."""
    metrics_enabled: bool = True
    deterministic_ids: bool = False
    """True when ids come from ``IncrementalIdGenerator`` (we own the global provider)."""
    _baseline: dict[Any, MetricPoint] = field(default_factory=dict, repr=False)
    _final: list[MetricPoint] | None = field(default=None, repr=False)
    _cache: tuple[int, Index] | None = field(default=None, repr=False)

    @property
    def _index(self) -> Index:
        spans = self.exporter.get_finished_spans()
        cached = self._cache
        if cached is None or cached[0] != len(spans):
            cached = (len(spans), Index(from_readable(s) for s in spans))
            self._cache = cached
        return cached[1]

    @property
    def readable_spans(self) -> tuple[ReadableSpan, ...]:
        """The SDK spans themselves."""
        return tuple(self.exporter.get_finished_spans())

    def clear(self) -> None:
        """Forget the spans and metrics so far (e.g. after a warm-up call)."""
        self.exporter.clear()
        self._cache = None
        self._baseline = {_key(p): p for p in self._raw_points()}

    # -- metrics
    def _raw_points(self) -> list[MetricPoint]:
        if self._final is not None:
            return self._final
        return _points(self.metrics_reader)

    def metrics(self, name: str | None = None) -> list[MetricPoint]:
        """Collected metric points (cumulative since the capture or ``clear()``)."""
        out = []
        for point in self._raw_points():
            if name is not None and point.name != name:
                continue
            base = self._baseline.get(_key(point))
            if base is not None and point.kind != "gauge":
                point = MetricPoint(
                    point.name,
                    point.attributes,
                    point.kind,
                    point.value - base.value,
                    point.count - base.count,
                    point.extra,
                )
                if point.value == 0 and point.count == 0:
                    continue
            out.append(point)
        return out

    def metric_sum(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a counter, or of a histogram's recorded values, over matching points."""
        return sum(p.value for p in self.metrics(name) if p.matches(attributes))

    def metric_count(self, name: str, attributes: Mapping[str, Any] | None = None) -> int:
        """Number of values a histogram recorded over matching points."""
        return sum(p.count for p in self.metrics(name) if p.matches(attributes))

    def get_collected_metrics(self) -> list[dict[str, Any]]:
        """Metric points as plain dicts (snapshot-friendly), sorted by name and attributes."""
        rows = [
            {
                "name": p.name,
                "attributes": dict(sorted(p.attributes.items())),
                "kind": p.kind,
                "value": p.value,
                **({"count": p.count} if p.kind == "histogram" else {}),
            }
            for p in self.metrics()
        ]
        return sorted(rows, key=lambda r: (r["name"], sorted(map(str, r["attributes"].items()))))

    # -- LLM checks
    def assert_metrics_consistent(self) -> CaptureLLM:
        """GenAI metrics agree with the spans: calls per model, input and output token sums."""
        if not self.metrics_enabled:
            return self
        problems = _problems.metrics_problems(self.records, self.metrics())
        if problems:
            raise self._fail("metrics disagree with the trace:\n  " + "\n  ".join(problems))
        return self

    def assert_content_policy(self) -> CaptureLLM:
        """No prompt/completion text unless this capture turned capture_content on."""
        if not self.capture_content:
            self.assert_no_content()
        return self

    def assert_llm_checks(self, *, allow_legacy: bool = False) -> CaptureLLM:
        """Semconv completeness, the content policy and metrics-vs-traces, in one call."""
        self.assert_semconv(allow_legacy=allow_legacy)
        self.assert_content_policy()
        self.assert_metrics_consistent()
        return self

    # -- export
    def to_otlp_json(self) -> dict[str, Any]:
        """The captured spans as one OTLP JSON ``ExportTraceServiceRequest``."""
        return otlp_json.encode(self.readable_spans)

    def write_otlp_json(self, path: str | Path) -> Path:
        """Write the spans as an OTLP JSON line; ``otel-llm check`` reads the file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(otlp_json.dumps(self.readable_spans), encoding="utf-8")
        return target

    def as_dicts(self, *, volatile: Iterable[str] = VOLATILE_ATTRIBUTES) -> list[dict[str, Any]]:
        """Spans as plain dicts with ids and times renumbered in order: stable snapshots.

        Trace and span ids become 1, 2, ... in order of appearance; each distinct
        timestamp becomes its rank in seconds (1e9, 2e9, ...), so order survives and
        durations do not. ``volatile`` attributes read ``"<volatile>"``.
        """
        records = self.records
        volatile = set(volatile)
        trace_ids: dict[str, int] = {}
        span_ids: dict[str, int] = {}
        for r in records:
            trace_ids.setdefault(r.trace_id, len(trace_ids) + 1)
            span_ids.setdefault(r.span_id, len(span_ids) + 1)
        stamps = sorted(
            {t for r in records for t in (r.start_ns, r.end_ns, *(e.time_ns for e in r.events))}
        )
        when = {t: nanoseconds(i + 1) for i, t in enumerate(stamps)}
        out = []
        for r in records:
            item: dict[str, Any] = {
                "name": r.name,
                "context": {"trace_id": trace_ids[r.trace_id], "span_id": span_ids[r.span_id]},
                "parent": None
                if r.parent_id is None
                else {"trace_id": trace_ids[r.trace_id], "span_id": span_ids.get(r.parent_id, 0)},
                "kind": r.kind,
                "start_time": when[r.start_ns],
                "end_time": when[r.end_ns],
                "attributes": {
                    k: "<volatile>" if k in volatile else _plain(v)
                    for k, v in sorted(r.attributes.items())
                },
                "status": {
                    "code": r.status,
                    **({"description": r.status_message} if r.status_message else {}),
                },
            }
            if r.events:
                item["events"] = [
                    {
                        "name": e.name,
                        "timestamp": when[e.time_ns],
                        "attributes": _plain(dict(e.attributes)),
                    }
                    for e in r.events
                ]
            out.append(item)
        return out


@contextmanager
def capture(
    *,
    capture_content: bool = False,
    metrics: bool = True,
    ollama_hosts: Sequence[str] | None = None,
    **options: Any,
) -> Iterator[CaptureLLM]:
    """Instrument otel_llm into a fresh in-memory capture; uninstrument on exit.

    ``options`` go to ``otel_llm.instrument()`` (``latest_metrics=True``,
    ``legacy_attributes=True``, ``redact=...``). Content capture is off unless asked
    for here, whatever the environment says, so tests are deterministic; so is the
    background context-window lookup (``ollama_context_lookup=True`` turns it on: its
    answer arrives when it arrives), leaving a request's ``num_ctx`` as the only window.
    """
    import otel_llm

    provider, ours = _provider()
    if ours:
        _ids.reset()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], resource=Resource.create())
    cap = CaptureLLM(
        exporter=InMemorySpanExporter(),
        metrics_reader=reader,
        tracer_provider=provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        metrics_enabled=metrics,
        deterministic_ids=ours,
    )
    otel_llm.uninstrument()
    with _lock:
        _forwarder.active.append(cap)
    try:
        kwargs: dict[str, Any] = {
            "metrics_exporter": "none",
            "ollama_context_lookup": False,
            **options,
        }
        if ollama_hosts:
            kwargs["ollama_hosts"] = list(ollama_hosts)
        otel_llm.instrument(
            tracer_provider=provider,
            meter_provider=meter_provider,
            capture_content=capture_content,
            metrics=metrics,
            **kwargs,
        )
        yield cap
    finally:
        otel_llm.uninstrument()
        with _lock:
            if cap in _forwarder.active:
                _forwarder.active.remove(cap)
        try:
            cap._final = _points(reader)
        finally:
            meter_provider.shutdown()
