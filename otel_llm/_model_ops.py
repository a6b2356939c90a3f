"""Spans of Ollama's model operations (pull, push, create, copy, delete, show).

The GenAI conventions list these endpoints as *not* GenAI operations, so their spans
carry no ``gen_ai.*`` attribute (a GenAI backend must not count a pull as an inference):
the name follows the general ``{operation} {target}`` rule (``pull llama3.2``), the kind
is CLIENT, the server and outcome use the stable ``server.*``, ``error.type`` and
``http.response.status_code``, and Ollama's own facts live under ``ollama.operation.*``.
The span follows the same life as an inference span (``_patch`` → observer → ``_finish``).
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_llm import semconv as sc
from otel_llm._span_writer import SpanWriter
from otel_llm._types import LLMCall

__all__ = ["attributes", "start"]


def start(call: LLMCall, spans: SpanWriter, ctx: Context | None = None) -> Span:
    """Open ``"{operation} {model}"`` with what the request said."""
    attrs: dict[str, AttributeValue] = {
        sc.OLLAMA_OPERATION_NAME: call.operation,
        sc.SERVER_ADDRESS: call.server_address,
    }
    if call.server_port is not None:
        attrs[sc.SERVER_PORT] = call.server_port
    model = call.request_model
    if model:
        attrs[sc.OLLAMA_OPERATION_MODEL] = model
    if call.op_destination:
        attrs[sc.OLLAMA_OPERATION_DESTINATION] = call.op_destination
    return spans.start(
        f"{call.operation} {model}" if model else call.operation, attrs, call.start_wall_ns, ctx
    )


def attributes(call: LLMCall) -> dict[str, AttributeValue]:
    """The outcome: HTTP status, last progress status, bytes and layers, error."""
    attrs: dict[str, AttributeValue] = {}
    if call.status_code:
        attrs[sc.HTTP_STATUS_CODE] = call.status_code
    if call.op_status is not None:
        attrs[sc.OLLAMA_OPERATION_STATUS] = call.op_status
    if call.op_total_bytes is not None:
        attrs[sc.OLLAMA_OPERATION_TOTAL_BYTES] = call.op_total_bytes
    if call.op_completed_bytes is not None:
        attrs[sc.OLLAMA_OPERATION_COMPLETED_BYTES] = call.op_completed_bytes
    if call.op_layers is not None:
        attrs[sc.OLLAMA_OPERATION_LAYERS] = call.op_layers
    if call.stream and call.ended_by:
        attrs[sc.STREAM_ENDED_BY] = call.ended_by
    if call.error_type is not None:
        attrs[sc.ERROR_TYPE] = call.error_type
    return attrs
