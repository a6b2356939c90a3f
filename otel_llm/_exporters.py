"""Exporters we build fail fast: a missing collector costs one warning and a short flush.

The SDK's OTLP exporters retry a failed export with exponential backoff (1, 2, 4 s...)
until their own timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s), logging a warning per
retry; at exit the batch processor and the metric reader each flush through that
loop, so a script with no collector used to take 12 s to exit and print eight
"Transient error ... retrying" lines. Here each OTLP exporter that otel_llm builds is
wrapped so that:

- an export runs on a helper thread and its result is awaited; the first failed
  attempt (refused, 5xx/``UNAVAILABLE``, any warning the exporter logs) ends the wait:
  the batch is given up, the exporter's own retries go on unheard in the background;
- the endpoint's *breaker* then opens: batches are dropped at once, without touching
  the network, and counted (``otel_llm.exporter.span.dropped`` /
  ``otel_llm.exporter.metric_data_point.dropped``); one probe goes through after a
  cool-down (5 s, doubling to 60 s) and at the start of a flush, and a success
  (a late one from an abandoned export too) closes it again;
- during a flush (``shutdown``, ``force_flush``, exit) an export waits at most
  ``OTEL_LLM_EXPORT_FLUSH_TIMEOUT`` (2000 ms) for an answer, so a collector that
  accepts and never answers costs that much at exit, not 30 s;
- one warning per endpoint says what to do; the exporter's own warnings from our
  helper threads go to the ``otel_llm.exporter`` logger at DEBUG.

Memory stays bounded by the batch processor's queue (``OTEL_BSP_MAX_QUEUE_SIZE``, 2048
spans) plus at most two batches held by abandoned exports per endpoint. Exporters and
providers the app built itself are never wrapped.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_llm import instruments
from otel_llm.environment_variables import OTEL_LLM_EXPORT_FLUSH_TIMEOUT
from otel_llm.version import __version__

__all__ = [
    "COLLECTOR_DOWN",
    "DEFAULT_FLUSH_TIMEOUT_MS",
    "EXPORT_FAILED",
    "FailFastMetricExporter",
    "FailFastSpanExporter",
    "FlushBoundedMetricReader",
    "FlushBoundedSpanProcessor",
    "batch_processor",
    "dropped",
    "flush_timeout",
    "metric_reader",
    "observe_drops",
]

_logger = logging.getLogger("otel_llm")
_quiet = logging.getLogger("otel_llm.exporter")

DEFAULT_FLUSH_TIMEOUT_MS = 2000
"""How long an export may go unanswered during a flush before the endpoint counts as down."""

COLLECTOR_DOWN = "collector_down"
"""``error.type`` of items dropped without an attempt while the endpoint's breaker is open."""
EXPORT_FAILED = "export_failed"
"""``error.type`` of items in an attempt that failed or went unanswered."""

_COOL_DOWN_S = 5.0
_MAX_COOL_DOWN_S = 60.0
_MAX_STUCK = 2  # abandoned exports still running, per endpoint: bounds threads and memory
_SPAN_TIMEOUT_MS = 30_000  # OTEL_BSP_EXPORT_TIMEOUT's default (the SDK itself ignores it)

dropped: dict[tuple[str, str], int] = {}
"""``(signal, error.type)`` → items given up on since start (``signal``: traces, metrics)."""
_dropped_lock = threading.Lock()


def _drop(signal: str, reason: str, count: int) -> None:
    with _dropped_lock:
        dropped[(signal, reason)] = dropped.get((signal, reason), 0) + count


def flush_timeout() -> float:
    """Seconds from ``OTEL_LLM_EXPORT_FLUSH_TIMEOUT`` (ms); ``inf`` if 0 or negative."""
    raw = os.environ.get(OTEL_LLM_EXPORT_FLUSH_TIMEOUT, "").strip()
    try:
        millis = float(raw) if raw else DEFAULT_FLUSH_TIMEOUT_MS
    except ValueError:
        _logger.error("otel_llm: %s=%r is not a number of ms", OTEL_LLM_EXPORT_FLUSH_TIMEOUT, raw)
        millis = DEFAULT_FLUSH_TIMEOUT_MS
    return millis / 1000 if millis > 0 else math.inf


# -- one export attempt, on its own thread --------------------------------------------------
_current = threading.local()


class _Attempt:
    """One call of the wrapped exporter; finished when it returns or first complains."""

    def __init__(self, call: Callable[[], bool], on_late: Callable[[bool], None]) -> None:
        self._call = call
        self._on_late = on_late
        self.wake = threading.Event()
        self.done = threading.Event()
        self.ok = False
        self.complaint: str | None = None
        self.abandoned = False
        self._lock = threading.Lock()

    def start(self) -> None:
        context = contextvars.copy_context()  # keeps the processor's suppress-instrumentation
        thread = threading.Thread(
            target=context.run, args=(self._run,), name="otel_llm-export", daemon=True
        )
        thread.start()

    def _run(self) -> None:
        _current.attempt = self
        ok = False
        try:
            ok = bool(self._call())
        except Exception as exc:  # an exporter that raises failed; the processor must not see it
            self.complain(type(exc).__name__)
        finally:
            with self._lock:
                self.ok = ok
                self.done.set()
                late = self.abandoned
            self.wake.set()
            if late:
                self._on_late(ok)

    def complain(self, reason: str) -> None:
        if self.complaint is None:
            self.complaint = reason
        self.wake.set()

    @property
    def finished(self) -> bool:
        return self.done.is_set() or self.complaint is not None

    def abandon(self) -> bool:
        """Give up on it; False if it had already returned."""
        with self._lock:
            if self.done.is_set():
                return False
            self.abandoned = True
            return True


class _Hush(logging.Filter):
    """Keeps the wrapped exporter's own warnings from our helper threads off the app's logs.

    Such a warning (``Transient error ... retrying``) is the first sign of a failed
    attempt: it ends the wait. Records from other threads (exporters the app built)
    pass untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attempt: _Attempt | None = getattr(_current, "attempt", None)
        if attempt is None:
            return True
        if record.levelno >= logging.WARNING:
            attempt.complain(_reason(record))
        if _quiet.isEnabledFor(logging.DEBUG):
            _quiet.debug("%s: %s", record.name, record.getMessage())
        return False


_HUSH = _Hush()


def _hush_exporter_loggers() -> None:
    """Put the filter on every exporter logger (a logger filter sees only its own records)."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (
            name.startswith("opentelemetry.exporter")
            and isinstance(logger, logging.Logger)
            and _HUSH not in logger.filters
        ):
            logger.addFilter(_HUSH)


def _reason(record: logging.LogRecord) -> str:
    """What went wrong, in a few words, from an exporter's log record."""
    message = record.getMessage()
    args = record.args if isinstance(record.args, tuple) else ()
    errors = [a for a in args if isinstance(a, BaseException)]
    if "refused" in message.lower():
        return "connection refused"
    if errors:
        return type(errors[0]).__name__
    if args and str(record.msg).startswith("Transient"):  # "Transient error %s ..."
        return str(args[0])[:80]
    if "timeout" in message.lower() or "deadline" in message.lower():
        return "timed out"
    return str(args[-1] if args else message)[:80]


# -- the breaker of one endpoint ------------------------------------------------------------
class _Breaker:
    """Shared by the exporters of one endpoint, so traces and metrics warn once."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.reset()

    def reset(self) -> None:
        """Closed, nothing pending (also a forked child's start: no helper threads in it)."""
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._failed_at = -math.inf
        self._cool_down = _COOL_DOWN_S
        self._open = False
        self._warned = False
        self._stuck: list[_Attempt] = []  # abandoned attempts still running
        self._flushes = 0
        self._waiting: set[_Attempt] = set()  # attempts being awaited, woken when it opens
        self._flush_epoch = 0.0  # since when some exporter of this endpoint has been flushing

    def begin_flush(self) -> None:
        with self._lock:
            if self._flushes == 0:
                self._flush_epoch = time.monotonic()
            self._flushes += 1

    def end_flush(self) -> None:
        with self._lock:
            self._flushes = max(0, self._flushes - 1)

    def admit(self) -> bool:
        """May an export go out now? Closed, or open with a probe due.

        Flushes (exit: traces and metrics one after the other) get one probe between them,
        so a collector that is back is not missed and one that hangs costs one timeout.
        """
        with self._lock:
            self._stuck = [a for a in self._stuck if not a.done.is_set()]
            if len(self._stuck) >= _MAX_STUCK:
                return False
            if not self._open:
                return True
            if self._flushes:
                return self._failed_at < self._flush_epoch
            return time.monotonic() >= self._open_until

    def failed_since(self, when: float) -> bool:
        return self._failed_at > when

    def watch(self, attempt: _Attempt) -> None:
        with self._lock:
            self._waiting.add(attempt)

    def unwatch(self, attempt: _Attempt) -> None:
        with self._lock:
            self._waiting.discard(attempt)

    def success(self) -> None:
        with self._lock:
            was_open, self._open = self._open, False
            self._cool_down = _COOL_DOWN_S
        if was_open:
            _logger.info("otel_llm: %s answers again; exporting resumed", self.endpoint)

    def failure(self, reason: str, signal: str, pending: _Attempt | None) -> None:
        with self._lock:
            now = time.monotonic()
            if self._open:
                self._cool_down = min(self._cool_down * 2, _MAX_COOL_DOWN_S)
            self._open = True
            self._failed_at = now
            self._open_until = now + self._cool_down
            if pending is not None:
                self._stuck.append(pending)
            waiting = list(self._waiting)
            first, self._warned = not self._warned, True
        for attempt in waiting:  # other signals' exports to this endpoint stop waiting too
            attempt.wake.set()
        if first:
            _logger.warning(
                "otel_llm: cannot export %s to %s (%s); telemetry is dropped and counted until it"
                " answers. Start a collector (docker compose -f docker-compose.observability.yml"
                " up -d), point OTEL_EXPORTER_OTLP_ENDPOINT at yours, or set"
                " OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER to console or none.",
                signal,
                self.endpoint,
                reason,
            )
        else:
            _quiet.debug("otel_llm: export of %s to %s failed: %s", signal, self.endpoint, reason)


_breakers: dict[str, _Breaker] = {}
_breakers_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A child starts afresh: its parent's helper threads (and their locks) are not in it."""
    global _breakers_lock, _dropped_lock
    _breakers_lock, _dropped_lock = threading.Lock(), threading.Lock()
    for breaker in _breakers.values():
        breaker.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _breaker(inner: object) -> _Breaker:
    raw = str(getattr(inner, "_endpoint", "") or type(inner).__name__)
    parts = urlsplit(raw) if "://" in raw else None
    key = f"{parts.scheme}://{parts.netloc}" if parts is not None and parts.netloc else raw
    with _breakers_lock:
        return _breakers.setdefault(key, _Breaker(key))


# -- what both wrappers share -----------------------------------------------------------------
class _FailFast:
    """Runs each export as an ``_Attempt`` under the endpoint's breaker and the flush deadline."""

    def __init__(self, inner: object, signal: str) -> None:
        self._signal = signal
        self._breaker = _breaker(inner)
        self._flush_timeout = flush_timeout()
        self._flush_since: float | None = None
        self._attempt: _Attempt | None = None
        _hush_exporter_loggers()

    def begin_flush(self) -> None:
        """From now on an export waits at most the flush timeout (an ongoing one too)."""
        self._flush_since = time.monotonic()
        self._breaker.begin_flush()
        attempt = self._attempt
        if attempt is not None:
            attempt.wake.set()

    def end_flush(self) -> None:
        self._flush_since = None
        self._breaker.end_flush()

    def _send(self, call: Callable[[], bool], count: int, timeout: float) -> bool:
        if not self._breaker.admit():
            _drop(self._signal, COLLECTOR_DOWN, count)
            return False
        attempt = _Attempt(call, self._late)
        self._attempt = attempt
        started = time.monotonic()
        self._breaker.watch(attempt)
        attempt.start()
        while not attempt.finished and not self._breaker.failed_since(started):
            limit = started + timeout
            if self._flush_since is not None:
                limit = min(limit, max(started, self._flush_since) + self._flush_timeout)
            remaining = limit - time.monotonic()
            if remaining <= 0:
                break
            attempt.wake.wait(remaining)
            attempt.wake.clear()
        self._breaker.unwatch(attempt)
        self._attempt = None
        if attempt.done.is_set() and attempt.ok:
            self._breaker.success()
            return True
        running = attempt.abandon()
        reason = attempt.complaint or (
            f"no answer within {time.monotonic() - started:.1f}s" if running else "export failed"
        )
        self._breaker.failure(reason, self._signal, attempt if running else None)
        _drop(self._signal, EXPORT_FAILED, count)
        return False

    def _late(self, ok: bool) -> None:
        """An abandoned attempt returned: a success means the endpoint is back."""
        if ok:
            self._breaker.success()


class FailFastSpanExporter(_FailFast, SpanExporter):
    """Wraps one of our span exporters: gives up fast, counts what it drops."""

    def __init__(self, inner: SpanExporter) -> None:
        _FailFast.__init__(self, inner, "traces")
        self._inner = inner
        self._timeout = _env_ms("OTEL_BSP_EXPORT_TIMEOUT", _SPAN_TIMEOUT_MS)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = self._send(
            lambda: self._inner.export(spans) is SpanExportResult.SUCCESS, len(spans), self._timeout
        )
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        # Also stops the inner exporter's background retries (its shutdown event).
        self._inner.shutdown()


class FailFastMetricExporter(_FailFast, MetricExporter):
    """Wraps one of our metric exporters: gives up fast, counts the points it drops."""

    def __init__(self, inner: MetricExporter) -> None:
        _FailFast.__init__(self, inner, "metrics")
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        def call() -> bool:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            return result is MetricExportResult.SUCCESS

        ok = self._send(call, _points(metrics_data), timeout_millis / 1000)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )


def _env_ms(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default) / 1000
    except ValueError:
        return default / 1000


# -- processors that tell their exporter when a flush starts ------------------------------
class FlushBoundedSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor whose flushes (and exit) wait for the collector only so long."""

    def __init__(self, exporter: FailFastSpanExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._fail_fast = exporter

    def shutdown(self) -> None:
        self._fail_fast.begin_flush()
        super().shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        self._fail_fast.begin_flush()
        try:
            return super().force_flush(timeout_millis)
        finally:
            self._fail_fast.end_flush()


class FlushBoundedMetricReader(PeriodicExportingMetricReader):
    """A PeriodicExportingMetricReader whose flushes wait for the collector only so long."""

    def __init__(self, exporter: FailFastMetricExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._fail_fast = exporter

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._fail_fast.begin_flush()
        super().shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        self._fail_fast.begin_flush()
        try:
            return super().force_flush(timeout_millis=timeout_millis)
        finally:
            self._fail_fast.end_flush()


def batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """The batch processor for ``exporter``: flush-bounded if it is one of our wrappers."""
    if isinstance(exporter, FailFastSpanExporter):
        return FlushBoundedSpanProcessor(exporter)
    return BatchSpanProcessor(exporter)


def metric_reader(inner: MetricExporter) -> PeriodicExportingMetricReader:
    """A periodic reader exporting through ``inner`` wrapped to fail fast."""
    return FlushBoundedMetricReader(FailFastMetricExporter(inner))


# -- the counters, on the MeterProvider we build ----------------------------------------------
def _observe(signal: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        with _dropped_lock:
            counts = [(reason, n) for (sig, reason), n in dropped.items() if sig == signal]
        return [Observation(n, {"error.type": reason}) for reason, n in counts]

    return callback


def observe_drops(provider: MeterProvider) -> None:
    """Report ``dropped`` as the two ``otel_llm.exporter.*.dropped`` counters on ``provider``."""
    meter = provider.get_meter("otel_llm", __version__)
    for spec, signal in (
        (instruments.EXPORTER_SPANS_DROPPED, "traces"),
        (instruments.EXPORTER_POINTS_DROPPED, "metrics"),
    ):
        meter.create_observable_counter(
            spec.name, callbacks=[_observe(signal)], unit=spec.unit, description=spec.description
        )
