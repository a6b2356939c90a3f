"""[3b] How our spans reach the SDK: one finished ``ReadableSpan`` each, where nothing can tell.

The SDK's ``Tracer.start_span`` builds a ``Span`` that validates and copies every
attribute into ``BoundedAttributes``, takes a lock for each ``set_attributes``, and at
``end`` copies it all again into the ``ReadableSpan`` that span processors receive:
about half of what otel_llm added to a call (``bench/RESULTS.md``). Our attributes are
already clean (typed, capped at ``semconv.MAX_TEXT_LENGTH``) and our spans carry no
events or links, so ``SpanWriter`` does what ``start_span`` does with less: at the start,
the sampler's decision and the ids (``traceparent``, exemplars and child spans see the
real span context); until the end, the attributes in a plain dict; at the end, the span
itself handed to the processors' ``on_end``: like the SDK's own ``Span``, it is a
``ReadableSpan``, and logfire hands over its pending spans the same way. Processors see
the same span, just never a mutable one in ``on_start``.

So the lean path is taken only where that cannot be noticed, decided once per tracer
and re-checked when the provider's processors change (the SDK swaps its tuple): an SDK
``Tracer`` with default attribute limits and no SDK self-metrics, whose processors do
nothing in ``on_start``/``_on_ending`` (the SDK's simple and batch processors and their
subclasses). Anything else (another SDK, logfire's or a user's own processor, span
limits) goes through ``tracer.start_span``. Samplers are asked as ``start_span`` asks
them, attributes they add included; the SDK's own default instances (``DEFAULT_ON``,
``ALWAYS_ON``), whose answer is fixed by the parent's flags, are answered for.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import time_ns
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.sdk import trace as sdk
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, Decision
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from otel_llm._guard import report

__all__ = ["PendingSpan", "SpanWriter"]

_RANDOM_FLAG: Final[int | None] = getattr(TraceFlags, "RANDOM_TRACE_ID", None)
_UNSET: Final = Status(StatusCode.UNSET)
_MOST_ATTRIBUTES: Final = 128
"""The SDK's default span attribute count limit; ours never reach it, a lower one might."""

_CLIENT: Final = SpanKind.CLIENT  # an enum member read costs a lookup each time
_SAMPLE: Final = Decision.RECORD_AND_SAMPLE
_DROP: Final = Decision.DROP
_FLAGS: Final = {f: TraceFlags(f) for f in range(4)}
"""Trace flags by value (sampled, random): built once, not per span."""
_DEFAULT_SAMPLERS: Final = (DEFAULT_ON, ALWAYS_ON)
"""The SDK's own default sampler instances: their decision is the parent's sampled flag
(or always), taken here without a ``SamplingResult`` and a copy of the attributes."""

_QUIET: Final = (SpanProcessor, SimpleSpanProcessor, BatchSpanProcessor)
_QUIET_STARTS: Final = frozenset(c.on_start for c in _QUIET)
"""``on_start`` functions known to do nothing (as are ``_on_ending`` ones below)."""
_QUIET_ENDINGS: Final = frozenset(getattr(c, "_on_ending", None) for c in _QUIET)


class SpanWriter:
    """Opens our CLIENT spans on ``tracer``: lean where it fits (module docstring)."""

    __slots__ = (
        "_checked",
        "_default_sampler",
        "_enabled",
        "_ids",
        "_info",
        "_lean",
        "_processors",
        "_random",
        "_resource",
        "_sampler",
        "_scope",
        "_tracer",
    )

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._processors: Any = None
        self._checked: object = None
        self._lean = False
        try:
            self._fit(tracer)
        except Exception as error:  # another SDK's shape: the standard path, always
            self._processors = None
            report("otel_llm._span_writer.fit", error)

    def _fit(self, tracer: trace.Tracer) -> None:
        if type(tracer) is not sdk.Tracer:
            return
        limits = tracer._span_limits
        if limits.max_span_attribute_length is not None or (
            limits.max_span_attributes is not None and limits.max_span_attributes < _MOST_ATTRIBUTES
        ):
            return
        metrics = getattr(tracer, "_tracer_metrics", None)
        if metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics":
            return
        processors = tracer.span_processor
        if type(processors) is not sdk.SynchronousMultiSpanProcessor:
            return
        self._sampler = tracer.sampler
        self._default_sampler = any(self._sampler is s for s in _DEFAULT_SAMPLERS)
        self._ids = tracer.id_generator
        self._random = getattr(self._ids, "is_trace_id_random", None)
        self._enabled = getattr(tracer, "_is_enabled", None)
        self._resource = tracer.resource
        self._scope = tracer._instrumentation_scope
        self._info = tracer.instrumentation_info  # deprecated, still set by start_span
        self._processors = processors

    @property
    def lean(self) -> bool:
        """True while spans take the lean path (the processors are all quiet)."""
        processors = self._processors
        if processors is None:
            return False
        current = processors._span_processors
        if current is not self._checked:  # a processor was added: look again
            self._lean = all(
                type(p).on_start in _QUIET_STARTS
                and getattr(type(p), "_on_ending", None) in _QUIET_ENDINGS
                for p in current
            )
            self._checked = current
        return self._lean

    def start(
        self,
        name: str,
        attributes: dict[str, Any],
        start_ns: int,
        ctx: context_api.Context | None = None,
    ) -> trace.Span:
        """Open a CLIENT span under ``ctx`` or the current context (what ``start_span``
        would open). ``attributes`` may become the span's own dict: hand a fresh one."""
        if not self.lean:
            return self._tracer.start_span(
                name, ctx, kind=_CLIENT, attributes=attributes, start_time=start_ns
            )
        if ctx is None:
            ctx = context_api.get_current()
        parent: SpanContext | None = trace.get_current_span(ctx).get_span_context()
        if self._enabled is not None and not self._enabled():
            return trace.NonRecordingSpan(parent)  # type: ignore[arg-type]
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            random = _RANDOM_FLAG is not None and bool(parent.trace_flags & _RANDOM_FLAG)
        else:
            parent = None
            trace_id = self._ids.generate_trace_id()
            random = self._random is not None and self._random()
        if self._default_sampler:  # what DEFAULT_ON / ALWAYS_ON would answer
            sampled = parent is None or parent.trace_flags.sampled or self._sampler is ALWAYS_ON
            record = sampled
            trace_state = parent.trace_state if parent is not None else None
        else:
            result = self._sampler.should_sample(ctx, trace_id, name, _CLIENT, attributes, ())
            sampled = result.decision is _SAMPLE
            record = result.decision is not _DROP
            trace_state = result.trace_state
            if record:
                attributes = dict(result.attributes)  # the sampler may have added some
        flags = 1 if sampled else 0
        if random:
            flags |= _RANDOM_FLAG  # type: ignore[operator]
        span_context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[flags],
            trace_state=trace_state,
        )
        if not record:
            return trace.NonRecordingSpan(span_context)
        return PendingSpan(span_context, name, parent, attributes, start_ns, self)

    def write(self, span: PendingSpan) -> None:
        """Hand ``span``, finished, to the processors: it is its own ``ReadableSpan``."""
        self._processors.on_end(span)


class PendingSpan(trace.Span, ReadableSpan):
    """A recording span whose attributes wait in a dict until it is written whole at its end.

    Like the SDK's own ``Span``, it is also the ``ReadableSpan`` the processors receive
    when it ends (no second object per span). Its attribute dict holds values as the SDK
    would store them (sequences as tuples, strings capped by their producer); nothing is
    validated again on the way out.
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_instrumentation_info",
        "_instrumentation_scope",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_resource",
        "_start_time",
        "_status",
        "_writer",
    )
    _attributes: dict[str, Any]  # narrower than ReadableSpan's: ours, and mutable until the end
    _context: SpanContext

    def __init__(
        self,
        context: SpanContext,
        name: str,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        start_ns: int,
        writer: SpanWriter,
    ) -> None:
        # ReadableSpan's fields, set here rather than through its __init__ and its twelve
        # keyword arguments: the writer holds the resource and scope already.
        self._context = context
        self._name = name
        self._parent = parent
        self._attributes = attributes
        self._start_time = start_ns
        self._end_time: int | None = None
        self._status = _UNSET
        self._events: tuple[Event, ...] = ()  # ours have none: no list per span
        self._links = ()
        self._kind = _CLIENT
        self._resource = writer._resource
        self._instrumentation_scope = writer._scope
        self._instrumentation_info = writer._info
        self._writer: SpanWriter | None = writer  # None once written

    def own_attributes(self) -> dict[str, Any]:
        """The span's attribute dict, for ``_span`` to add the response's to in place: it
        builds them as the SDK stores them (tuples, capped strings). Call while recording."""
        return self._attributes

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._writer is not None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        """As the SDK stores it: a sequence as a tuple, None dropped. (``_span`` adds its
        own attributes, already clean, through ``own_attributes``.)"""
        if self._writer is not None and value is not None:
            self._attributes[key] = tuple(value) if isinstance(value, list) else value

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._writer is not None:
            self._events = (*self._events, Event(name, attributes, timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        pass  # links are set at start only; ours have none

    def update_name(self, name: str) -> None:
        if self._writer is not None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._writer is None:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is StatusCode.UNSET or self._status.status_code is StatusCode.OK:
            return  # as the SDK: UNSET never overrides, OK is final
        self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event: dict[str, types.AttributeValue] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return  # ended already
        self._end_time = time_ns() if end_time is None else end_time
        writer.write(self)

    def __repr__(self) -> str:
        return f"PendingSpan({self._name!r}, {self._context!r})"
