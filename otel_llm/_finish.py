"""[5] End a call exactly once: span attributes and status, then metrics and log sinks.

Reached from the first of: the final record, the body exhausted, ``close()``,
an exception while reading (cancellation included), or garbage collection.
"""

from __future__ import annotations

from time import perf_counter_ns

from otel_llm import _context_window, _span, _state
from otel_llm._guard import report
from otel_llm._types import LLMCall

__all__ = ["finish"]


def finish(call: LLMCall, ended_by: str, exc: BaseException | None = None, end_ns: int = 0) -> None:
    """Close ``call`` once; later calls are no-ops. Never raises."""
    if call.finished:
        return
    call.finished = True
    try:
        call.end_ns = end_ns or perf_counter_ns()
        call.ended_by = ended_by
        if exc is not None and call.error_type is None:
            call.error_type = type(exc).__qualname__
            call.error_message = str(exc)[:512] or call.error_type
        _context_window.annotate(call)  # a cache read; a first sight queues a lookup
        _span.end(call)
    except Exception as error:
        report("otel_llm._finish.span", error)
    state = _state.current
    if state is None:
        return
    for sink in state.sinks:
        try:
            sink(call)
        except Exception as error:
            report(f"otel_llm._finish.{getattr(sink, '__qualname__', 'sink')}", error)
