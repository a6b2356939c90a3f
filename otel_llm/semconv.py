"""Every attribute name otel_llm writes, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions (see
``docs/attributes.md``); facts only Ollama reports live under ``ollama.*`` and
facts about our own observation under ``otel_llm.*``. ``LEGACY`` maps current
names to the pre-1.37 ones for backends that still expect them.
"""

from __future__ import annotations

from typing import Final

# -- operations ---------------------------------------------------------------
CHAT: Final = "chat"
TEXT_COMPLETION: Final = "text_completion"
EMBEDDINGS: Final = "embeddings"
INFERENCE_OPERATIONS: Final = frozenset({CHAT, TEXT_COMPLETION, "generate_content", EMBEDDINGS})
"""``gen_ai.operation.name`` values of an inference (or embeddings) span: an LLM call."""
INVOKE_WORKFLOW: Final = "invoke_workflow"
INVOKE_AGENT: Final = "invoke_agent"
EXECUTE_TOOL: Final = "execute_tool"

# -- request (set at span start: samplers see them) ---------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
REQUEST_STREAM: Final = "gen_ai.request.stream"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_TOP_K: Final = "gen_ai.request.top_k"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
REQUEST_REASONING_LEVEL: Final = "gen_ai.request.reasoning.level"
OUTPUT_TYPE: Final = "gen_ai.output.type"

# -- response -----------------------------------------------------------------
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
ERROR_TYPE: Final = "error.type"

# -- content (opt-in only) ----------------------------------------------------
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"

# -- agents, tools, workflows (chains.py) --------------------------------------
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
WORKFLOW_NAME: Final = "gen_ai.workflow.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
RETRIEVAL: Final = "retrieval"

# -- Ollama's own timings (the server's clock; seconds, converted from ns) ------
OLLAMA_TOTAL_DURATION: Final = "ollama.total_duration"
OLLAMA_LOAD_DURATION: Final = "ollama.load_duration"
OLLAMA_PROMPT_EVAL_DURATION: Final = "ollama.prompt_eval_duration"
OLLAMA_EVAL_DURATION: Final = "ollama.eval_duration"
OLLAMA_PREFILL_TOKENS_PER_SECOND: Final = "ollama.prefill.tokens_per_second"
OLLAMA_DECODE_TOKENS_PER_SECOND: Final = "ollama.decode.tokens_per_second"
OLLAMA_COLD_LOAD: Final = "ollama.cold_load"
OLLAMA_DONE_REASON: Final = "ollama.done_reason"

# -- what we observed on the wire ----------------------------------------------
TOOL_CALL_NAMES: Final = "otel_llm.tool_calls.names"
TOOL_CALL_IDS: Final = "otel_llm.tool_calls.ids"
THINKING: Final = "otel_llm.response.thinking"
USAGE_MISSING: Final = "otel_llm.usage.missing"
STREAM_ENDED_BY: Final = "otel_llm.stream.ended_by"
NESTED_IN_SDK_SPAN: Final = "otel_llm.nested_in_sdk_span"  # otel_llm/_sdk_span.py
STREAM_CHUNKS: Final = "otel_llm.stream.chunks"
EMBEDDINGS_COUNT: Final = "otel_llm.embeddings.count"
HTTP_STATUS_CODE: Final = "http.response.status_code"

# -- legacy names (``legacy_attributes=True`` emits these as well) --------------
LEGACY_SYSTEM: Final = "gen_ai.system"
TRACELOOP_REQUEST_TYPE: Final = "llm.request.type"  # older OpenLLMetry's operation (_sdk_span.py)
LEGACY: Final[dict[str, str]] = {
    USAGE_INPUT_TOKENS: "gen_ai.usage.prompt_tokens",
    USAGE_OUTPUT_TOKENS: "gen_ai.usage.completion_tokens",
    PROVIDER_NAME: LEGACY_SYSTEM,
}

# -- error.type values we emit besides HTTP status codes and exception names ---
ERROR_STREAM_INCOMPLETE: Final = "stream_incomplete"
ERROR_STREAM_ERROR: Final = "stream_error"

# -- Ollama insight: context window, time outside Ollama, model operations -----
# (docs/attributes.md, "Context window", "Time outside Ollama", "Model operations")
OLLAMA_CONTEXT_SIZE: Final = "ollama.context.size"
OLLAMA_CONTEXT_SOURCE: Final = "ollama.context.source"
OLLAMA_CONTEXT_UTILIZATION: Final = "ollama.context.utilization"
OLLAMA_CONTEXT_TRUNCATED: Final = "ollama.context.truncated"
OLLAMA_WAIT_DURATION: Final = "ollama.wait_duration"
OLLAMA_OPERATION_NAME: Final = "ollama.operation.name"
OLLAMA_OPERATION_MODEL: Final = "ollama.operation.model"
OLLAMA_OPERATION_DESTINATION: Final = "ollama.operation.destination"
OLLAMA_OPERATION_STATUS: Final = "ollama.operation.status"
OLLAMA_OPERATION_TOTAL_BYTES: Final = "ollama.operation.total_bytes"
OLLAMA_OPERATION_COMPLETED_BYTES: Final = "ollama.operation.completed_bytes"
OLLAMA_OPERATION_LAYERS: Final = "ollama.operation.layers"

PULL: Final = "pull"
PUSH: Final = "push"
CREATE: Final = "create"
COPY: Final = "copy"
DELETE: Final = "delete"
SHOW: Final = "show"
MODEL_OPERATIONS: Final = frozenset({PULL, PUSH, CREATE, COPY, DELETE, SHOW})
"""Ollama's model-management operations: spans of their own, not GenAI inference spans."""

# -- limits on what traffic may put into names, attributes and labels ---------------------
MAX_TEXT_LENGTH: Final = 256
"""Most characters of any string copied from a request or response into a span name,
an attribute or a metric label (model names, ids, finish reasons, tool names, options,
baggage tags). The adapters cut values where they read them, so every later step sees
the capped value (the SDK's own attribute length limit is off by default)."""
