"""Logs that join traces: trace ids on the app's log lines, one ``llm.call`` event per call.

``add_trace_context`` is a plain structlog processor and ``TraceContextFilter`` its
stdlib ``logging`` twin; both write the current span's ids as lower-case hex (32 and 16
digits), the form Jaeger and Grafana link on. Neither is installed by ``instrument()``:
the app's logging configuration stays the app's. ``CallLogger`` is the opt-in sink
(``instrument(log_events=True)``) that logs each finished call through structlog.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from otel_llm import _content
from otel_llm._config import Settings
from otel_llm._types import LLMCall
from otel_llm._units import seconds

__all__ = ["EVENT", "CallLogger", "TraceContextFilter", "add_trace_context"]

EVENT = "llm.call"


def add_trace_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add ``trace_id``/``span_id`` of the current span, if there is one.

    Ids already in the event (an ``llm.call`` event carries its own call's) are kept.
    """
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


class TraceContextFilter(logging.Filter):
    """``logging`` filter: set ``record.trace_id``/``record.span_id`` inside a span.

    Outside a span nothing is set, unless ``default`` is given (e.g. ``""``) so that a
    format string naming ``%(trace_id)s`` always works.
    """

    def __init__(self, name: str = "", default: str | None = None) -> None:
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        elif self.default is not None:
            record.trace_id = record.span_id = self.default
        return True


def _seconds(ns: int) -> float:
    return round(seconds(ns), 6)


class CallLogger:
    """The log-event sink: one structlog event ``llm.call`` per finished call.

    Carries model, tokens, durations, status and error type, plus the ids of the
    call's own span (the sink runs after it ended). Content only when content
    capture is on, redacted and truncated like span content.
    """

    def __init__(self, settings: Settings, logger: Any = None) -> None:
        self._settings = settings
        self._logger = logger if logger is not None else structlog.get_logger("otel_llm")

    def __call__(self, call: LLMCall) -> None:
        log = self._logger.info if call.error_type is None else self._logger.warning
        log(EVENT, **self.fields(call))

    def fields(self, call: LLMCall) -> dict[str, Any]:
        """The event's key/value pairs (absent facts are left out, never guessed)."""
        out: dict[str, Any] = {
            "operation": call.operation,
            "provider": call.provider_confirmed or call.provider,
            "model": call.request_model,
            "server_address": call.server_address,
            "server_port": call.server_port,
            "stream": call.stream,
            "status": "ok" if call.error_type is None else "error",
            "duration_s": _seconds(call.end_ns - call.start_ns),
        }
        optional: dict[str, Any] = {
            "response_model": call.response_model,
            "error_type": call.error_type,
            "http_status": call.status_code or None,
            "input_tokens": call.input_tokens,
            "output_tokens": call.output_tokens,
            "cache_read_tokens": call.cache_read_tokens,
            "finish_reasons": call.finish_reasons,
            "load_s": _ns(call.load_duration_ns),
            "prompt_eval_s": _ns(call.prompt_eval_duration_ns),
            "eval_s": _ns(call.eval_duration_ns),
            "server_total_s": _ns(call.total_duration_ns),
        }
        out.update((k, v) for k, v in optional.items() if v is not None)
        if call.usage_missing and call.input_tokens is None:
            out["usage_missing"] = True
        if call.stream:
            out["chunks"] = call.chunks
            if call.first_chunk_ns:
                out["ttft_s"] = _seconds(call.first_chunk_ns - call.start_ns)
        span = call.span
        if span is not None:
            ctx = span.get_span_context()
            if ctx.is_valid:
                out["trace_id"] = format(ctx.trace_id, "032x")
                out["span_id"] = format(ctx.span_id, "016x")
        if self._settings.capture_content:
            if call.input_messages:
                out["input_messages"] = call.input_messages
            if call.output_text:
                out["output_text"] = _content.clip("".join(call.output_text), self._settings)
        return out


def _ns(value: int | None) -> float | None:
    return None if value is None else _seconds(value)
