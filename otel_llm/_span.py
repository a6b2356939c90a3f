"""The GenAI span: opened with the attributes samplers need, closed once with the rest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_llm import _content, _model_ops
from otel_llm import semconv as sc
from otel_llm._span_writer import PendingSpan, SpanWriter
from otel_llm._types import LLMCall
from otel_llm._units import seconds
from otel_llm.tags import attributes_from_baggage

__all__ = ["end", "start"]


def start(
    call: LLMCall,
    spans: SpanWriter,
    entries: Mapping[str, object] | None = None,
    ctx: Context | None = None,
) -> Span:
    """Open the CLIENT span ``"{operation} {model}"`` with the request attributes, under
    ``ctx`` (the current context when None)."""
    if call.operation in sc.MODEL_OPERATIONS:  # pull, show...: not GenAI inference
        return _model_ops.start(call, spans, ctx)
    attrs: dict[str, AttributeValue] = {
        sc.OPERATION_NAME: call.operation,
        sc.PROVIDER_NAME: call.provider,
        sc.SERVER_ADDRESS: call.server_address,
    }
    if call.server_port is not None:
        attrs[sc.SERVER_PORT] = call.server_port
    model = call.request_model
    if model:
        attrs[sc.REQUEST_MODEL] = model
    if call.stream:
        attrs[sc.REQUEST_STREAM] = True
    if call.request_attributes:
        attrs.update(call.request_attributes)
    settings = call.settings
    tagged = attributes_from_baggage(settings.baggage_keys, entries)
    if tagged:
        attrs.update(tagged)
        if settings.metric_tags:  # the allow-listed tags metrics carry (metrics.Recorder)
            call.metric_tags = {k: tagged[k] for k in settings.metric_tags if k in tagged}
    if settings.legacy_attributes:
        attrs[sc.LEGACY_SYSTEM] = call.provider
    span = spans.start(
        f"{call.operation} {model}" if model else call.operation, attrs, call.start_wall_ns, ctx
    )
    if settings.capture_content and span.is_recording():
        # After the sampler: a dropped span never pays for encoding the prompt.
        content: dict[str, AttributeValue] = {}
        if call.input_messages:
            content[sc.INPUT_MESSAGES] = _content.encode(call.input_messages)
        if call.system_instructions:
            content[sc.SYSTEM_INSTRUCTIONS] = _content.encode(call.system_instructions)
        if content:
            span.set_attributes(content)
    return span


def end(call: LLMCall) -> None:
    """Set the response attributes and status, then end the span at the call's last byte.

    A span the sampler dropped records nothing: its attributes are not even computed.
    """
    span = call.span
    if span is None:
        return
    if span.is_recording():
        # Our own span's dict is filled in place: the values are built clean here (tuples,
        # capped strings), as the SDK would store them.
        own = span.own_attributes() if type(span) is PendingSpan else None
        attrs = own if own is not None else {}
        if call.operation in sc.MODEL_OPERATIONS:
            attrs.update(_model_ops.attributes(call))
        else:
            response_attributes(call, attrs)
        if own is None and attrs:
            span.set_attributes(attrs)
        if call.error_type is not None:
            span.set_status(Status(StatusCode.ERROR, call.error_message or call.error_type))
    span.end(end_time=call.start_wall_ns + (call.end_ns - call.start_ns))


def response_attributes(
    call: LLMCall, attrs: dict[str, AttributeValue] | None = None
) -> dict[str, AttributeValue]:
    """Everything learnt from the response, as span attributes (added to ``attrs``)."""
    if attrs is None:
        attrs = {}
    if call.status_code:
        attrs[sc.HTTP_STATUS_CODE] = call.status_code
    if call.provider_confirmed and call.provider_confirmed != call.provider:
        attrs[sc.PROVIDER_NAME] = call.provider_confirmed
        if call.settings.legacy_attributes:
            attrs[sc.LEGACY_SYSTEM] = call.provider_confirmed
    if call.response_model:
        attrs[sc.RESPONSE_MODEL] = call.response_model
    if call.response_id:
        attrs[sc.RESPONSE_ID] = call.response_id
    if call.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = tuple(call.finish_reasons)
    elif call.error_type is not None and call.stream:
        attrs[sc.RESPONSE_FINISH_REASONS] = ("error",)
    if call.input_tokens is not None:
        attrs[sc.USAGE_INPUT_TOKENS] = call.input_tokens
    if call.output_tokens is not None:
        attrs[sc.USAGE_OUTPUT_TOKENS] = call.output_tokens
    if call.cache_read_tokens is not None:
        attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = call.cache_read_tokens
    if call.usage_missing and call.input_tokens is None:
        attrs[sc.USAGE_MISSING] = True
    if call.settings.legacy_attributes:
        for name in (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS):
            if name in attrs:
                attrs[sc.LEGACY[name]] = attrs[name]
    if call.embedding_dimensions is not None:
        attrs[sc.EMBEDDINGS_DIMENSION_COUNT] = call.embedding_dimensions
    if call.embedding_count is not None:
        attrs[sc.EMBEDDINGS_COUNT] = call.embedding_count
    if call.stream:
        if call.first_chunk_ns:
            attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = seconds(call.first_chunk_ns - call.start_ns)
        attrs[sc.STREAM_CHUNKS] = call.chunks
        if call.ended_by:
            attrs[sc.STREAM_ENDED_BY] = call.ended_by
    _ollama_timings(call, attrs)
    _ollama_insight(call, attrs)
    if call.tool_call_names:
        attrs[sc.TOOL_CALL_NAMES] = tuple(call.tool_call_names)
    if call.tool_call_ids:
        attrs[sc.TOOL_CALL_IDS] = tuple(call.tool_call_ids)
    if call.thinking:
        attrs[sc.THINKING] = True
    if call.error_type is not None:
        attrs[sc.ERROR_TYPE] = call.error_type
    if call.settings.capture_content:
        output = _output_messages(call)
        if output is not None:
            attrs[sc.OUTPUT_MESSAGES] = _content.encode(output)
    return attrs


def _ollama_timings(call: LLMCall, attrs: dict[str, AttributeValue]) -> None:
    total = call.total_duration_ns
    if total is not None:
        attrs[sc.OLLAMA_TOTAL_DURATION] = seconds(total)
    load = call.load_duration_ns
    if load is not None:
        load_s = seconds(load)
        attrs[sc.OLLAMA_LOAD_DURATION] = load_s
        attrs[sc.OLLAMA_COLD_LOAD] = load_s >= call.settings.cold_load_seconds
    prefill = call.prompt_eval_duration_ns
    if prefill is not None:
        prefill_s = seconds(prefill)
        attrs[sc.OLLAMA_PROMPT_EVAL_DURATION] = prefill_s
        if prefill > 0 and call.input_tokens:
            attrs[sc.OLLAMA_PREFILL_TOKENS_PER_SECOND] = call.input_tokens / prefill_s
    decode = call.eval_duration_ns
    if decode is not None:
        decode_s = seconds(decode)
        attrs[sc.OLLAMA_EVAL_DURATION] = decode_s
        if decode > 0 and call.output_tokens:
            attrs[sc.OLLAMA_DECODE_TOKENS_PER_SECOND] = call.output_tokens / decode_s


def _ollama_insight(call: LLMCall, attrs: dict[str, AttributeValue]) -> None:
    """Context window (``_context_window``) and time spent outside Ollama's own clock."""
    size = call.context_size
    if size:
        attrs[sc.OLLAMA_CONTEXT_SIZE] = size
        attrs[sc.OLLAMA_CONTEXT_SOURCE] = call.context_source or "default"
        if call.input_tokens is not None:
            attrs[sc.OLLAMA_CONTEXT_UTILIZATION] = call.input_tokens / size
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED] = call.input_tokens >= size
    total = call.total_duration_ns
    if total is not None and call.end_ns:
        attrs[sc.OLLAMA_WAIT_DURATION] = seconds(max(0, call.end_ns - call.start_ns - total))


def _output_messages(call: LLMCall) -> list[dict[str, Any]] | None:
    settings = call.settings
    parts: list[dict[str, Any]] = []
    if call.output_reasoning:
        parts.append(_content.part_text("".join(call.output_reasoning), settings, "reasoning"))
    if call.output_text:
        parts.append(_content.part_text("".join(call.output_text), settings))
    for tool in call.output_tool_calls or ():
        raw = tool.pop("_raw", None)
        if raw is not None:
            try:
                arguments: Any = json.loads(raw) if raw else None
            except ValueError:
                arguments = raw
            tool = _content.part_tool_call(tool.get("id"), tool.get("name"), arguments, settings)
        parts.append(tool)
    if not parts:
        return None
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if call.finish_reasons:
        message["finish_reason"] = call.finish_reasons[0]
    return [message]
