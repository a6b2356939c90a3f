"""[1] The transport-neutral first step of a call, shared by every front-end.

A front-end (httpx/httpx2, requests, aiohttp) knows its HTTP library and
nothing else: it hands this module the request's method, URL parts, body and a
mutable header mapping; ``begin`` matches the endpoint, lets the adapter read
the body, opens the span and injects ``traceparent``/baggage. None means "not
an LLM call": the front-end then steps aside.

While a front-end's original send runs, the context carries ``CALL_KEY`` (the
call being made). A front-end that finds it set is a transport *under* another
front-end (aiohttp under ``httpx.AsyncClient.send``, a requests redirect hop
inside ``Session.send``) and must not open a second span.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from time import perf_counter_ns, time_ns
from typing import Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_llm import _sdk_span, _span
from otel_llm._finish import finish
from otel_llm._guard import guarded
from otel_llm._state import State
from otel_llm._types import LLMCall, Parser
from otel_llm.adapters import match
from otel_llm.adapters._common import request_fields

__all__ = [
    "CALL_KEY",
    "begin",
    "call_context",
    "headers_arrived",
    "in_call",
    "inject",
    "read_whole",
]

CALL_KEY = context.create_key("otel_llm.call")
"""Context key: the ``LLMCall`` whose send is running (set by every front-end)."""


def in_call() -> bool:
    """True while some front-end's send for an LLM call is running (one span per call)."""
    return context.get_value(CALL_KEY) is not None


_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, context.Context())))
"""The key ``set_span_in_context`` stores the span under, learnt through that function."""


def call_context(call: LLMCall) -> context.Context:
    """The context a front-end attaches around its original send: our span, and ``CALL_KEY``.

    One copy of the current context with both set (``set_span_in_context`` and then
    ``set_value`` would copy it twice).
    """
    values = dict(context.get_current())
    if call.span is not None:
        values[_SPAN_KEY] = call.span
    values[CALL_KEY] = call
    return context.Context(values)


@guarded(None)
def begin(
    state: State,
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    body: bytes | str | Mapping[str, Any] | None,
    headers: MutableMapping[str, str] | None,
) -> LLMCall | None:
    """Match the endpoint, read the request, open the span, inject; None means "not ours".

    ``body`` is the raw request body, or the JSON object itself when the library
    was handed one (aiohttp's ``json=``); ``headers`` receives ``traceparent``.
    """
    endpoint = match(method, path)
    if endpoint is None or not is_instrumentation_enabled():
        return None
    adapter, operation, native = endpoint
    port = port or (443 if scheme == "https" else 80)
    settings = state.settings
    call = LLMCall(
        operation=operation,
        provider=settings.provider_for(host, port, native),
        adapter=adapter,
        settings=settings,
        server_address=host,
        server_port=port,
        start_ns=perf_counter_ns(),
        start_wall_ns=time_ns(),  # the same instant: end = start_wall + (end_ns - start_ns)
    )
    if isinstance(body, str):
        body = body.encode()
    parsed = (  # the prompt is not decoded
        request_fields(body, settings.capture_content) if isinstance(body, bytes) and body else body
    )
    if type(parsed) is dict or isinstance(parsed, Mapping):  # the ABC check is the slow one
        adapter.read_request(call, parsed)
    ctx = context.get_current()  # read once: the parent, SDK span, baggage all come from it
    _sdk_span.note(call, ctx)
    entries = baggage.get_all(ctx)  # tags for the span, and whether to inject it
    call.span = _span.start(call, state.spans, entries, ctx)
    if settings.propagate and headers is not None:
        inject(headers, call, bool(entries))
    return call


_W3C_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})
_w3c_textmap: list[Any] = [None]


@guarded(None)
def inject(headers: MutableMapping[str, str], call: LLMCall, has_baggage: bool) -> None:
    """``traceparent`` (and baggage) for servers that continue the trace (vLLM, our proxy).

    With the default W3C propagators and no baggage, the header is written directly:
    the same bytes as ``propagate.inject``, at a fraction of its cost.
    """
    span = call.span
    if span is None:
        return
    textmap = propagate.get_global_textmap()
    if textmap is not _w3c_textmap[0]:
        if set(textmap.fields) != _W3C_FIELDS:
            propagate.inject(headers, context=trace.set_span_in_context(span))
            return
        _w3c_textmap[0] = textmap
    ctx = span.get_span_context()
    if not ctx.is_valid or has_baggage:
        propagate.inject(headers, context=trace.set_span_in_context(span))
        return
    headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    if ctx.trace_state:
        headers["tracestate"] = ctx.trace_state.to_header()


def headers_arrived(call: LLMCall, status: int) -> None:
    """The response head is in (every front-end): stamp it; an HTTP error is the call's error."""
    call.headers_ns = perf_counter_ns()
    call.status_code = status
    if status >= 400:
        call.error_type = str(status)


def read_whole(call: LLMCall, parser: Parser, content: bytes) -> None:
    """A body read whole (``stream=False``, a transport, a response hook): parse, end.

    Ended by ``final`` when the body held the final record, as a streamed read says.
    """
    ended_by = "exhausted"
    if content:
        call.first_chunk_ns = call.headers_ns
        if parser.feed(content):
            ended_by = "final"
        else:
            parser.close()
    finish(call, ended_by)
