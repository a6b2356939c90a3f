"""What the patched callables read while instrumented; None when not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import Tracer

from otel_llm._config import Settings
from otel_llm._span_writer import SpanWriter
from otel_llm._types import LLMCall

__all__ = ["State", "current"]


@dataclass(frozen=True, slots=True)
class State:
    """Resolved once per ``instrument()``; swapped whole, never mutated."""

    tracer: Tracer
    settings: Settings
    spans: SpanWriter
    """Opens our spans on ``tracer`` (``_span_writer``: decided here, once)."""
    sinks: tuple[Callable[[LLMCall], None], ...] = ()
    """Called with each finished call after its span ends (metrics, log event)."""


current: State | None = None
