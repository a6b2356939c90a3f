"""[5] GenAI metrics for finished calls: the per-call sink, built once per ``instrument()``.

Everything that can be decided once is decided when the recorder is built: which metric
set (classic or latest: one recorder class each), which instruments, the model cap.

Per call, the recorder only appends the finished ``LLMCall`` to a bounded buffer (well
under a µs). The buffer is folded into the SDK instruments (``_fold``) when any reader of
the meter collects (a callback of an observable instrument, which the SDK runs before it
reads its storage), when it reaches ``BUFFER_LIMIT`` calls, and on ``uninstrument()``.
Folding reuses one attribute dict per label set and adds each group of values to the
SDK's aggregation at once, which costs a fraction of one ``record`` per value, so the
whole process spends less, not just the calling thread. Duration and time to first
chunk keep their span as exemplar context.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.util.types import AttributeValue

from otel_llm import instruments, prometheus
from otel_llm import semconv as sc
from otel_llm._config import DEFAULT_MAX_MODELS, DEFAULT_MAX_TAG_VALUES, Settings
from otel_llm._fold import Batch, Folder
from otel_llm._guard import report
from otel_llm._types import LLMCall
from otel_llm._units import nanoseconds, seconds

__all__ = [
    "BUFFER_LIMIT",
    "OTHER",
    "ClassicRecorder",
    "LatestRecorder",
    "ModelCap",
    "Recorder",
    "endpoint",
    "recorder",
]

OTHER: Final = "_OTHER"
"""The model attribute value once ``max_models`` distinct models have been seen."""

BUFFER_LIMIT: Final = 1024
"""Finished calls held between collections; the call that fills the buffer folds it."""
_LABEL_SETS: Final = 1024
"""Attribute dicts kept for reuse; past this many the cache starts over."""
_FOLD_INSTRUMENT: Final = "otel_llm.pending"
"""The observable instrument whose callback folds pending calls; it reports nothing."""
_MODEL_OPERATIONS: Final = sc.MODEL_OPERATIONS


class ModelCap:
    """Maps model names to attribute values, at most ``limit`` distinct ones.

    A buggy caller sending endless model names gets ``_OTHER`` instead of an endless
    number of series; names never admitted are not remembered either.
    """

    __slots__ = ("_lock", "_seen", "limit")

    def __init__(self, limit: int = DEFAULT_MAX_MODELS) -> None:
        self.limit = limit
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, model: str) -> str:
        value = self._seen.get(model)
        if value is not None:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen[model] = model
        return model


class _Labels:
    """The attribute dicts of one label set, built once and shared by every call in it.

    ``usage`` is ``base`` plus the allow-listed metric tags (``metric_tags``): duration and
    token metrics carry them, the rest do not.
    """

    __slots__ = ("base", "modality", "timed", "tokens_in", "tokens_out", "usage")

    def __init__(
        self,
        base: dict[str, AttributeValue],
        error: str | None,
        tags: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.base = base
        usage = self.usage = {**base, **dict(tags)} if tags else base
        self.timed = usage if error is None else {**usage, sc.ERROR_TYPE: error}
        self.tokens_in = {**usage, instruments.TOKEN_TYPE: "input"}
        self.tokens_out = {**usage, instruments.TOKEN_TYPE: "output"}
        self.modality = {**usage, instruments.TOKEN_MODALITY: "unknown"}


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()
"""Recorders with a meter; any reader's collection folds all of them (cheap when empty)."""
_callback_meters: weakref.WeakSet[Any] = weakref.WeakSet()


def _fold_pending(options: CallbackOptions) -> Iterable[Observation]:
    """The observable callback: fold every pending call before the reader reads."""
    for rec in list(_live):
        rec.flush()
    return ()


class Recorder:
    """The metrics sink: ``recorder(call)`` hands one finished call over.

    Subclasses (one per metric set) turn a call into measurements in ``_measure``.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_cache",
        "_cold_load_ns",
        "_folder",
        "_insight",
        "_limit",
        "_lock",
        "_models",
        "_server_metrics",
        "_tag_caps",
    )

    def __init__(
        self,
        meter: Meter,
        models: ModelCap,
        settings: Settings,
        server_metrics: bool = True,
        limit: int | None = None,
        max_tag_values: int = DEFAULT_MAX_TAG_VALUES,
    ) -> None:
        self._build(meter)
        self._models = models
        self._tag_caps = {key: ModelCap(max_tag_values) for key in settings.metric_tags}
        self._insight = instruments.build_insight(meter)
        self._server_metrics = server_metrics
        self._cold_load_ns = nanoseconds(settings.cold_load_seconds)
        self._folder = Folder(meter)
        self._buffer: deque[LLMCall] = deque()
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], _Labels] = {}
        # Without an SDK no collection will come to fold: write each call at once.
        wanted = BUFFER_LIMIT if limit is None else limit
        self._limit = max(1, wanted) if self._folder.deferred else 1
        if self._folder.deferred:
            _live.add(self)
            if meter not in _callback_meters:
                _callback_meters.add(meter)
                meter.create_observable_gauge(_FOLD_INSTRUMENT, callbacks=[_fold_pending])

    def __call__(self, call: LLMCall) -> None:
        if call.sdk_span:  # the SDK's own instrumentation counted this call (_sdk_span.py)
            return
        buffer = self._buffer
        buffer.append(call)
        if len(buffer) >= self._limit and self._lock.acquire(blocking=False):
            try:  # one thread folds; the others go on appending
                self._fold_locked()
            finally:
                self._lock.release()

    @property
    def pending(self) -> int:
        """Calls handed over and not folded yet (at most the buffer limit, give or take
        the calls of threads that finish while another folds)."""
        return len(self._buffer)

    def flush(self) -> None:
        """Fold every call handed over so far into the instruments."""
        with self._lock:
            self._fold_locked()

    def close(self) -> None:
        """Fold what is pending; calls that still finish are written at once."""
        self._limit = 1
        self.flush()
        _live.discard(self)

    def _fold_locked(self) -> None:
        buffer = self._buffer
        count = len(buffer)
        if not count:
            return
        batch = Batch()
        pop, measure, operation = buffer.popleft, self._measure, self._model_operation
        for _ in range(count):
            call = pop()
            try:
                if call.operation in _MODEL_OPERATIONS:
                    operation(call, batch)
                else:
                    measure(call, batch)
            except Exception as exc:
                report("otel_llm.metrics.measure", exc)
        self._folder.fold(batch)

    def _labels(self, call: LLMCall) -> _Labels:
        models = self._models
        request = call.request_model
        response = call.response_model
        provider = call.provider_confirmed or call.provider
        tags = self._tags(call) if self._tag_caps else ()
        key = (
            call.operation,
            provider,
            call.server_address,
            call.server_port,
            request,
            response,
            call.error_type,
            tags,
        )
        labels = self._cache.get(key)
        if labels is None:
            base: dict[str, AttributeValue] = {
                sc.OPERATION_NAME: call.operation,
                sc.PROVIDER_NAME: provider,
                sc.SERVER_ADDRESS: call.server_address,
            }
            if call.server_port is not None:
                base[sc.SERVER_PORT] = call.server_port
            if request:
                base[sc.REQUEST_MODEL] = models(request)
            if response:
                base[sc.RESPONSE_MODEL] = models(response)
            if len(self._cache) >= _LABEL_SETS:
                self._cache.clear()
            labels = self._cache[key] = _Labels(base, call.error_type, tags)
        return labels

    def _tags(self, call: LLMCall) -> tuple[tuple[str, str], ...]:
        """The call's allow-listed tags, each value-capped (``_OTHER`` past the cap)."""
        tags = call.metric_tags
        if not tags:
            return ()
        return tuple((key, cap(tags[key])) for key, cap in self._tag_caps.items() if key in tags)

    def _ollama_insight(self, call: LLMCall, labels: _Labels, batch: Batch) -> None:
        """Context utilisation and truncations; time outside Ollama's own clock."""
        insight = self._insight
        size, tokens = call.context_size, call.input_tokens
        if size and tokens is not None:
            batch.add(insight.context_utilization, tokens / size, labels.base)
            if tokens >= size:
                batch.add(insight.context_truncations, 1, labels.base)
        total = call.total_duration_ns
        if total is not None:
            wait = seconds(max(0, call.end_ns - call.start_ns - total))
            batch.add_sampled(insight.wait_duration, wait, labels.base, call.span, _end_wall(call))

    def _model_operation(self, call: LLMCall, batch: Batch) -> None:
        """Duration of a pull, push, create, copy, delete or show; bytes a pull brought.

        Rare next to inference: its attribute dicts are built per call.
        """
        insight = self._insight
        attrs: dict[str, AttributeValue] = {
            sc.OLLAMA_OPERATION_NAME: call.operation,
            sc.SERVER_ADDRESS: call.server_address,
        }
        if call.server_port is not None:
            attrs[sc.SERVER_PORT] = call.server_port
        if call.request_model:
            attrs[sc.OLLAMA_OPERATION_MODEL] = self._models(call.request_model)
        timed = attrs if call.error_type is None else {**attrs, sc.ERROR_TYPE: call.error_type}
        batch.add_sampled(
            insight.model_operation_duration,
            seconds(call.end_ns - call.start_ns),
            timed,
            call.span,
            _end_wall(call),
        )
        if call.operation == sc.PULL and call.op_completed_bytes:
            batch.add(insight.model_pulled, call.op_completed_bytes, attrs)

    def _build(self, meter: Meter) -> None:
        """Create this metric set's instruments on ``meter`` (one subclass per set)."""
        raise NotImplementedError

    def _measure(self, call: LLMCall, batch: Batch) -> None:
        raise NotImplementedError

    def _ollama_side(
        self, server: instruments.ServerInstruments, call: LLMCall, labels: _Labels, batch: Batch
    ) -> None:
        """What Ollama's own counters tell (both sets): its clock, context, time outside it."""
        if call.total_duration_ns is not None or call.load_duration_ns is not None:
            self._server(server, call, labels, batch)
        if call.total_duration_ns is not None or call.context_size:
            self._ollama_insight(call, labels, batch)

    def _server(
        self, server: instruments.ServerInstruments, call: LLMCall, labels: _Labels, batch: Batch
    ) -> None:
        """``gen_ai.server.*`` from Ollama's own clock (its final chunk's durations)."""
        load = call.load_duration_ns
        if load is not None and load >= self._cold_load_ns:
            batch.add(server.model_load_duration, seconds(load), labels.base)
        if not self._server_metrics:
            return
        total = call.total_duration_ns
        if total is not None:
            batch.add_sampled(
                server.request_duration, seconds(total), labels.timed, call.span, _end_wall(call)
            )
        if call.error_type is None:
            prefill = call.prompt_eval_duration_ns
            if prefill is not None:
                batch.add_sampled(
                    server.time_to_first_token,
                    seconds((load or 0) + prefill),
                    labels.base,
                    call.span,
                    _end_wall(call),
                )
            decode, tokens = call.eval_duration_ns, call.output_tokens
            if decode is not None and tokens:
                batch.add(server.time_per_output_token, seconds(decode) / tokens, labels.base)

    def _timings(
        self,
        duration: Histogram,
        ttfc: Histogram,
        tpoc: Histogram,
        call: LLMCall,
        labels: _Labels,
        batch: Batch,
    ) -> None:
        """Duration (exemplar), and for streams time to first chunk (exemplar) and the
        mean time per chunk after it (one value per stream, not one per chunk)."""
        span, at = call.span, _end_wall(call)
        batch.add_sampled(duration, seconds(call.end_ns - call.start_ns), labels.timed, span, at)
        first = call.first_chunk_ns
        if call.stream and first:
            batch.add_sampled(ttfc, seconds(first - call.start_ns), labels.base, span, at)
            if call.chunks > 1:
                mean = seconds(call.end_ns - first) / (call.chunks - 1)
                batch.add(tpoc, mean, labels.base)


def _end_wall(call: LLMCall) -> int:
    """Wall-clock time of the call's last byte (an exemplar's timestamp)."""
    return call.start_wall_ns + (call.end_ns - call.start_ns)


class ClassicRecorder(Recorder):
    """The classic set: one duration (embeddings too), tokens by ``gen_ai.token.type``."""

    __slots__ = ("_ins",)
    _ins: instruments.ClassicInstruments

    def _build(self, meter: Meter) -> None:
        self._ins = instruments.build_classic(meter)

    def _measure(self, call: LLMCall, batch: Batch) -> None:
        ins, labels = self._ins, self._labels(call)
        self._timings(
            ins.duration, ins.time_to_first_chunk, ins.time_per_output_chunk, call, labels, batch
        )
        if call.input_tokens is not None:
            batch.add(ins.token_usage, call.input_tokens, labels.tokens_in)
        if call.output_tokens is not None:
            batch.add(ins.token_usage, call.output_tokens, labels.tokens_out)
        self._ollama_side(ins.server, call, labels, batch)


class LatestRecorder(Recorder):
    """The latest set: usage counters, per-operation token histograms, embeddings apart."""

    __slots__ = ("_ins",)
    _ins: instruments.LatestInstruments

    def _build(self, meter: Meter) -> None:
        self._ins = instruments.build_latest(meter)

    def _measure(self, call: LLMCall, batch: Batch) -> None:
        ins, labels = self._ins, self._labels(call)
        ok = call.error_type is None
        if call.operation == sc.EMBEDDINGS:
            span, at = call.span, _end_wall(call)
            duration = seconds(call.end_ns - call.start_ns)
            batch.add_sampled(ins.embeddings_duration, duration, labels.timed, span, at)
            if ok and call.input_tokens is not None:
                batch.add(ins.embeddings_input, call.input_tokens, labels.usage)
        else:
            self._timings(
                ins.duration,
                ins.time_to_first_chunk,
                ins.time_per_output_chunk,
                call,
                labels,
                batch,
            )
            if call.input_tokens is not None:
                batch.add(ins.usage_input, call.input_tokens, labels.modality)
                if ok:
                    batch.add(ins.operation_input, call.input_tokens, labels.usage)
            if call.output_tokens is not None:
                batch.add(ins.usage_output, call.output_tokens, labels.modality)
                if ok:
                    batch.add(ins.operation_output, call.output_tokens, labels.usage)
            if call.cache_read_tokens is not None:
                batch.add(ins.usage_cache_read, call.cache_read_tokens, labels.modality)
        self._ollama_side(ins.server, call, labels, batch)


def recorder(
    meter: Meter,
    latest: bool,
    models: ModelCap,
    settings: Settings,
    server_metrics: bool = True,
    limit: int = BUFFER_LIMIT,
    max_tag_values: int = DEFAULT_MAX_TAG_VALUES,
) -> Recorder:
    """The one place the metric set is chosen: its instruments and its recorder."""
    cls = LatestRecorder if latest else ClassicRecorder
    return cls(meter, models, settings, server_metrics, limit, max_tag_values)


def endpoint() -> prometheus.Endpoint | None:
    """The running Prometheus endpoint (host, port), if ``instrument()`` started one."""
    from otel_llm.instrumentor import LLMInstrumentor

    return LLMInstrumentor().endpoint
