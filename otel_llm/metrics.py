"""[5] GenAI metrics for finished calls: one ``Recorder`` sink, built once per ``instrument()``.

Everything that can be decided once is decided in ``build_sinks``: which metric set
(classic or latest), which instruments, the model cap, the Prometheus endpoint. Per
call the recorder builds one attribute dict and records only the instruments that
have a value (a histogram record costs several µs in the Python SDK). Time and token
observations carry the call's span as context, so the SDK keeps trace exemplars.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

from opentelemetry import metrics as otel_metrics
from opentelemetry.context import Context
from opentelemetry.trace import set_span_in_context
from opentelemetry.util.types import AttributeValue

from otel_llm import _setup, instruments, prometheus
from otel_llm import semconv as sc
from otel_llm._config import (
    DEFAULT_MAX_MODELS,
    DEFAULT_MAX_TAG_VALUES,
    MetricsSettings,
    Settings,
)
from otel_llm._types import LLMCall
from otel_llm.instruments import Instruments
from otel_llm.version import __version__

__all__ = [
    "OTHER",
    "ModelCap",
    "Recorder",
    "build_sinks",
    "endpoint",
    "shutdown",
]

_logger = logging.getLogger("otel_llm")

OTHER: Final = "_OTHER"
"""The model attribute value once ``max_models`` distinct models have been seen."""

_SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"
_NS = 1e-9


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


_NO_SPAN: Final = Context()
"""Records made under this context carry no exemplar (no span in it)."""


class Recorder:
    """The metrics sink: ``recorder(call)`` records one finished call."""

    __slots__ = ("_cold_load_ns", "_ins", "_models", "_server_metrics", "_tag_caps", "_tokens")

    def __init__(
        self,
        ins: Instruments,
        models: ModelCap,
        settings: Settings,
        server_metrics: bool = True,
        max_tag_values: int = DEFAULT_MAX_TAG_VALUES,
    ) -> None:
        self._ins = ins
        self._models = models
        self._tag_caps = {key: ModelCap(max_tag_values) for key in settings.metric_tags}
        self._server_metrics = server_metrics
        self._cold_load_ns = int(settings.cold_load_seconds * 1e9)
        self._tokens = self._tokens_latest if ins.latest else self._tokens_classic

    def __call__(self, call: LLMCall) -> None:
        if call.operation in sc.MODEL_OPERATIONS:
            self._model_operation(call)
            return
        ins = self._ins
        attrs: dict[str, AttributeValue] = {
            sc.OPERATION_NAME: call.operation,
            sc.PROVIDER_NAME: call.provider_confirmed or call.provider,
            sc.SERVER_ADDRESS: call.server_address,
        }
        if call.server_port is not None:
            attrs[sc.SERVER_PORT] = call.server_port
        if call.request_model:
            attrs[sc.REQUEST_MODEL] = self._models(call.request_model)
        if call.response_model:
            attrs[sc.RESPONSE_MODEL] = self._models(call.response_model)
        ctx = set_span_in_context(call.span) if call.span is not None else None
        error = call.error_type
        usage = self._tagged(call, attrs)  # duration and tokens carry the allow-listed tags
        timed = usage if error is None else {**usage, sc.ERROR_TYPE: error}
        embeddings = call.operation == sc.EMBEDDINGS
        duration = ins.embeddings_duration if embeddings else ins.duration
        duration.record((call.end_ns - call.start_ns) * _NS, timed, ctx)
        first = call.first_chunk_ns
        if call.stream and first:
            ins.time_to_first_chunk.record((first - call.start_ns) * _NS, attrs, ctx)
            if call.chunks > 1:
                # One mean per stream, not one record per chunk: a record costs µs, a chunk
                # has a budget of well under one.
                mean = (call.end_ns - first) * _NS / (call.chunks - 1)
                ins.time_per_output_chunk.record(mean, attrs, _NO_SPAN)
        # Exemplars are for duration and time to first chunk; the rest skip the reservoir.
        self._tokens(call, usage, _NO_SPAN, embeddings)
        if call.total_duration_ns is not None or call.load_duration_ns is not None:
            self._server(call, attrs, timed, ctx)
        if call.total_duration_ns is not None or call.context_size:
            self._ollama_insight(call, attrs, ctx)

    # -- Ollama insight (context window, wait, model operations, metric tags) --------------
    def _tagged(self, call: LLMCall, attrs: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        """``attrs`` plus the call's allow-listed tags, each value-capped (``_OTHER``)."""
        tags = call.metric_tags
        if not tags or not self._tag_caps:
            return attrs
        out = dict(attrs)
        for key, cap in self._tag_caps.items():
            value = tags.get(key)
            if value is not None:
                out[key] = cap(value)
        return out

    def _ollama_insight(
        self, call: LLMCall, attrs: dict[str, AttributeValue], ctx: Context | None
    ) -> None:
        """Context utilisation and truncations; time outside Ollama's own clock."""
        insight = self._ins.insight
        if insight is None:
            return
        size, tokens = call.context_size, call.input_tokens
        if size and tokens is not None:
            insight.context_utilization.record(tokens / size, attrs, _NO_SPAN)
            if tokens >= size:
                insight.context_truncations.add(1, attrs, ctx)
        total = call.total_duration_ns
        if total is not None:
            wait = max(0, call.end_ns - call.start_ns - total) * _NS
            insight.wait_duration.record(wait, attrs, ctx)

    def _model_operation(self, call: LLMCall) -> None:
        """Duration of a pull, push, create, copy, delete or show; bytes a pull brought."""
        insight = self._ins.insight
        if insight is None:
            return
        attrs: dict[str, AttributeValue] = {
            sc.OLLAMA_OPERATION_NAME: call.operation,
            sc.SERVER_ADDRESS: call.server_address,
        }
        if call.server_port is not None:
            attrs[sc.SERVER_PORT] = call.server_port
        if call.request_model:
            attrs[sc.OLLAMA_OPERATION_MODEL] = self._models(call.request_model)
        timed = attrs if call.error_type is None else {**attrs, sc.ERROR_TYPE: call.error_type}
        ctx = set_span_in_context(call.span) if call.span is not None else None
        insight.model_operation_duration.record((call.end_ns - call.start_ns) * _NS, timed, ctx)
        if call.operation == sc.PULL and call.op_completed_bytes:
            insight.model_pulled.add(call.op_completed_bytes, attrs, _NO_SPAN)

    def _tokens_classic(
        self,
        call: LLMCall,
        attrs: dict[str, AttributeValue],
        ctx: Context | None,
        embeddings: bool,
    ) -> None:
        usage = self._ins.token_usage
        assert usage is not None
        if call.input_tokens is not None:
            usage.record(call.input_tokens, {**attrs, instruments.TOKEN_TYPE: "input"}, ctx)
        if call.output_tokens is not None:
            usage.record(call.output_tokens, {**attrs, instruments.TOKEN_TYPE: "output"}, ctx)

    def _tokens_latest(
        self,
        call: LLMCall,
        attrs: dict[str, AttributeValue],
        ctx: Context | None,
        embeddings: bool,
    ) -> None:
        ins = self._ins
        ok = call.error_type is None
        if embeddings:
            if ok and call.input_tokens is not None and ins.embeddings_input is not None:
                ins.embeddings_input.record(call.input_tokens, attrs, ctx)
            return
        assert ins.usage_input is not None and ins.usage_output is not None
        assert ins.usage_cache_read is not None
        assert ins.operation_input is not None and ins.operation_output is not None
        tagged = {**attrs, instruments.TOKEN_MODALITY: "unknown"}
        if call.input_tokens is not None:
            ins.usage_input.add(call.input_tokens, tagged, ctx)
            if ok:
                ins.operation_input.record(call.input_tokens, attrs, ctx)
        if call.output_tokens is not None:
            ins.usage_output.add(call.output_tokens, tagged, ctx)
            if ok:
                ins.operation_output.record(call.output_tokens, attrs, ctx)
        if call.cache_read_tokens is not None:
            ins.usage_cache_read.add(call.cache_read_tokens, tagged, ctx)

    def _server(
        self,
        call: LLMCall,
        attrs: dict[str, AttributeValue],
        timed: dict[str, AttributeValue],
        ctx: Context | None,
    ) -> None:
        """``gen_ai.server.*`` from Ollama's own clock (its final chunk's durations)."""
        ins = self._ins
        load = call.load_duration_ns
        if load is not None and load >= self._cold_load_ns:
            ins.model_load_duration.record(load * _NS, attrs, _NO_SPAN)
        if not self._server_metrics:
            return
        total = call.total_duration_ns
        if total is not None:
            ins.server_request_duration.record(total * _NS, timed, ctx)
        if call.error_type is None:
            prefill = call.prompt_eval_duration_ns
            if prefill is not None:
                ins.server_time_to_first_token.record(((load or 0) + prefill) * _NS, attrs, ctx)
            decode, tokens = call.eval_duration_ns, call.output_tokens
            if decode is not None and tokens:
                ins.server_time_per_output_token.record(decode * _NS / tokens, attrs, _NO_SPAN)


# -- building and tearing down ------------------------------------------------------------
_stops: list[Callable[[], None]] = []
_endpoint: prometheus.Endpoint | None = None
_kept_readers: weakref.WeakKeyDictionary[Any, prometheus.PrometheusReader] = (
    weakref.WeakKeyDictionary()
)
"""Readers built into a MeterProvider we created: reused by the next ``instrument()``."""


def endpoint() -> prometheus.Endpoint | None:
    """The running Prometheus endpoint (host, port), if ``instrument()`` started one."""
    return _endpoint


def shutdown() -> None:
    """Stop what ``build_sinks`` started: the endpoint, residency polling, added readers."""
    global _endpoint
    _endpoint = None
    while _stops:
        stop = _stops.pop()
        try:
            stop()
        except Exception as exc:
            _logger.debug("otel_llm: shutdown step failed: %r", exc)


def build_sinks(
    options: MetricsSettings, settings: Settings, meter_provider: Any = None
) -> list[Callable[[LLMCall], None]]:
    """The per-call sinks (metrics recorder, log event) that ``instrument()`` options ask for.

    ``options`` is resolved once in ``_config`` (keywords over environment over defaults);
    ``meter_provider`` is the app's, if it passed one.
    """
    shutdown()
    sinks: list[Callable[[LLMCall], None]] = []
    if options.enabled:
        provider = _meter_provider(options, meter_provider)
        meter = provider.get_meter("otel_llm", __version__, schema_url=_SCHEMA_URL)
        models = ModelCap(options.max_models)
        ins = instruments.build(meter, options.latest)
        sinks.append(Recorder(ins, models, settings, options.server, options.max_tag_values))
        if options.residency:
            from otel_llm import _residency

            _stops.append(_residency.start(meter, options.residency, settings, models))
    if options.log_events:
        from otel_llm import logs

        sinks.append(logs.CallLogger(settings))
    return sinks


def _meter_provider(options: MetricsSettings, provider: Any) -> Any:
    """The app's MeterProvider or ours; with the Prometheus reader on it if one is asked for."""
    address = options.prometheus
    if address is None:
        return provider or _setup.meter_provider(options.exporter)
    reader = prometheus.PrometheusReader()
    if provider is None:
        building = isinstance(
            otel_metrics.get_meter_provider(), otel_metrics._internal._ProxyMeterProvider
        )
        provider = _setup.meter_provider(
            options.exporter, extra_readers=[reader] if building else None
        )
        if building:
            _kept_readers[provider] = reader
    attached = _attach(provider, reader)
    if attached is not None:
        labels = options.prometheus_resource_labels
        _serve(attached, *address, prometheus.DEFAULT_RESOURCE_LABELS if labels is None else labels)
    return provider


def _attach(
    provider: Any, reader: prometheus.PrometheusReader
) -> prometheus.PrometheusReader | None:
    """Put ``reader`` on an existing provider (SDK ``add_metric_reader``); undone on shutdown."""
    kept = _kept_readers.get(provider)
    if kept is not None:
        return kept
    add = getattr(provider, "add_metric_reader", None)
    remove = getattr(provider, "remove_metric_reader", None)
    if add is None or remove is None:
        _logger.error(
            "otel_llm: no Prometheus endpoint: this MeterProvider cannot take another reader;"
            " add otel_llm.prometheus.PrometheusReader() to it and call"
            " otel_llm.prometheus.serve(reader, port)"
        )
        return None
    add(reader)
    _stops.append(lambda: remove(reader))
    return reader


def _serve(
    reader: prometheus.PrometheusReader, host: str, port: int, resource_labels: Iterable[str]
) -> None:
    global _endpoint
    try:
        served = prometheus.serve(reader, port, host, resource_labels)
    except OSError as exc:
        _logger.error("otel_llm: cannot serve Prometheus metrics on %s:%s: %s", host, port, exc)
        return
    _endpoint = served
    _stops.append(served.stop)
