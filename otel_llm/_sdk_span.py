"""One call, one count: an SDK's own GenAI span already around our call.

pydantic-ai's instrumentation, logfire and OpenLLMetry open an inference span
around the SDK call and record token metrics for it. When a front-end begins a
call while such a span is current, the policy (``instrument(sdk_spans=...)`` or
``OTEL_LLM_SDK_SPANS``, resolved once into ``Settings``) decides:

``nest`` (default)
    Our span is still opened, as the SDK span's child: it carries what only the
    wire knows (Ollama's timings, time to first chunk, server, ``traceparent``).
    It is marked ``otel_llm.nested_in_sdk_span`` and no metrics are recorded for
    it, because the SDK counted the call. The testing kit counts the SDK's span.
``ignore``
    SDK spans are not looked for: two inference spans, and the call counts twice.

An SDK inference span is a recording span whose ``gen_ai.operation.name`` is an
inference or embeddings operation (or, from older OpenLLMetry, ``llm.request.type``).
None of ours qualifies: a front-end's span is current only while its own send
runs, and a front-end under another steps aside (``_begin.CALL_KEY``).
"""

from __future__ import annotations

from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context

from otel_llm import semconv as sc
from otel_llm._types import LLMCall

__all__ = ["note"]

_LEGACY_TYPES: Final = frozenset({"chat", "completion", "embedding"})


def note(call: LLMCall, ctx: Context | None = None) -> None:
    """Called by every front-end before it opens the span: marks ``call`` if an SDK span is
    current (in ``ctx``, the current context) and the policy is ``nest``."""
    if not call.settings.nest_in_sdk_spans:
        return
    span = trace.get_current_span(ctx)
    attrs = getattr(span, "attributes", None)
    if not attrs or not span.is_recording():
        return
    operation = attrs.get(sc.OPERATION_NAME)
    if (
        operation in sc.INFERENCE_OPERATIONS
        or attrs.get(sc.TRACELOOP_REQUEST_TYPE) in _LEGACY_TYPES
    ):
        call.sdk_span = True
        call.request_attributes[sc.NESTED_IN_SDK_SPAN] = True
