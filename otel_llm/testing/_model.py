"""One finished span as plain data, whichever way it arrived: SDK ``ReadableSpan`` or OTLP JSON.

The pytest plugin (in-memory spans) and ``otel-llm check`` (exported files, Jaeger)
query the same ``SpanRecord``s, so an assertion means the same thing in both places.
Attribute arrays are tuples; ids are lower-case hex (32 / 16 digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from otel_llm import semconv as sc
from otel_llm._units import NS_PER_S, nanoseconds, seconds

__all__ = [
    "CONTENT_ATTRIBUTES",
    "CONTENT_EVENTS",
    "INFERENCE_OPERATIONS",
    "NS_PER_S",
    "EventRecord",
    "SpanRecord",
    "from_readable",
    "nanoseconds",
    "seconds",
]

INFERENCE_OPERATIONS: Final = sc.INFERENCE_OPERATIONS
"""``gen_ai.operation.name`` values that make a span an LLM call (``semconv``)."""

CONTENT_ATTRIBUTES: Final = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.retrieval.query.text",
        "gen_ai.retrieval.documents",
    }
)
"""Attributes that carry prompt or completion text (all opt-in in the GenAI conventions)."""

CONTENT_PREFIXES: Final = ("gen_ai.prompt.", "gen_ai.completion.")
"""Indexed legacy content attributes (``gen_ai.prompt.0.content``) some instrumentations write."""

CONTENT_EVENTS: Final = frozenset(
    {
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.client.inference.operation.details",
    }
)
"""Span events that carry content."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span: what every query and assertion reads."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    status: str = "UNSET"  # UNSET, OK, ERROR
    status_message: str = ""
    events: tuple[EventRecord, ...] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str = ""

    @property
    def is_llm(self) -> bool:
        """An LLM call: its ``gen_ai.operation.name`` is an inference or embeddings operation."""
        attrs = self.attributes
        # Our span nested in an SDK's own inference span is part of that call, not another one.
        return attrs.get(sc.OPERATION_NAME) in INFERENCE_OPERATIONS and not attrs.get(
            sc.NESTED_IN_SDK_SPAN
        )

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return seconds(self.end_ns - self.start_ns)

    @property
    def input_tokens(self) -> int | None:
        return _int(self.attributes.get(sc.USAGE_INPUT_TOKENS))

    @property
    def output_tokens(self) -> int | None:
        return _int(self.attributes.get(sc.USAGE_OUTPUT_TOKENS))

    @property
    def total_tokens(self) -> int | None:
        """Input + output tokens, from whichever of the two is recorded (None if neither)."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @property
    def time_to_first_chunk(self) -> float | None:
        value = self.attributes.get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    @property
    def error_type(self) -> str | None:
        value = self.attributes.get(sc.ERROR_TYPE)
        return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_value(item) for item in value)
    return value


def from_readable(span: Any) -> SpanRecord:
    """A ``SpanRecord`` from an SDK ``ReadableSpan``."""
    context = span.get_span_context()
    parent = span.parent
    status = span.status
    return SpanRecord(
        name=span.name,
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_id=format(parent.span_id, "016x") if parent is not None else None,
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        attributes={k: _value(v) for k, v in (span.attributes or {}).items()},
        status=status.status_code.name,
        status_message=status.description or "",
        events=tuple(
            EventRecord(
                e.name, e.timestamp, {k: _value(v) for k, v in (e.attributes or {}).items()}
            )
            for e in span.events
        ),
        resource=dict(span.resource.attributes) if span.resource is not None else {},
        scope=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )
