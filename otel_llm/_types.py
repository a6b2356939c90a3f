"""The one record passed between the steps of a call: ``LLMCall``.

The adapter fills the request half and, while the response streams, the
response half; the finisher reads only this record. Nothing here knows a wire
format or an OpenTelemetry API beyond holding the span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from otel_llm._config import Settings

__all__ = ["Adapter", "Endpoint", "LLMCall", "Parser", "Routes", "Steady"]


class LLMCall:
    """Everything known about one logical LLM call, request to last byte.

    A plain class, not a dataclass: of its ~60 fields a call sets a dozen, and the rest
    are read from the class defaults below, so making one costs 9 assignments, not 60.
    """

    def __init__(
        self,
        operation: str,
        provider: str,
        adapter: Adapter,
        settings: Settings,
        server_address: str,
        server_port: int | None,
        start_ns: int,
        start_wall_ns: int = 0,
        **fields: Any,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.adapter = adapter
        self.settings = settings
        self.server_address = server_address
        self.server_port = server_port
        self.start_ns = start_ns
        self.start_wall_ns = start_wall_ns
        self.request_attributes: dict[str, AttributeValue] = {}
        for name, value in fields.items():
            if not hasattr(LLMCall, name) or callable(getattr(LLMCall, name)):
                raise TypeError(f"LLMCall has no field {name!r}")
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"LLMCall({self.operation!r}, {self.request_model!r}, {vars(self)!r})"

    request_model: str | None = None
    stream: bool = False
    span: Span | None = None

    # opt-in content (structured per the GenAI message shape; JSON-encoded at the end)
    input_messages: list[dict[str, Any]] | None = None
    system_instructions: list[dict[str, Any]] | None = None
    output_text: list[str] | None = None
    output_reasoning: list[str] | None = None
    output_tool_calls: list[dict[str, Any]] | None = None

    # response, filled while observing
    status_code: int = 0
    headers_ns: int = 0
    first_chunk_ns: int = 0
    end_ns: int = 0
    chunks: int = 0
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    usage_missing: bool = False
    tool_call_names: list[str] | None = None
    tool_call_ids: list[str] | None = None
    thinking: bool = False
    total_duration_ns: int | None = None
    load_duration_ns: int | None = None
    prompt_eval_duration_ns: int | None = None
    eval_duration_ns: int | None = None
    embedding_dimensions: int | None = None
    embedding_count: int | None = None
    provider_confirmed: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    ended_by: str | None = None
    finished: bool = False
    sdk_span: bool = False
    """An SDK's own GenAI span is this call's parent and counted it (``_sdk_span``)."""

    # Ollama insight (_context_window, _model_ops): context window, metric tags, model ops
    num_ctx: int | None = None  # options.num_ctx as requested
    context_size: int | None = None  # the window the prompt had, once known (at finish)
    context_source: str | None = None  # request | modelfile | loaded | default
    metric_tags: dict[str, str] | None = None  # allow-listed tags, captured at span start
    op_destination: str | None = None  # /api/copy's destination
    op_status: str | None = None  # last progress status (pull, push, create)
    op_total_bytes: int | None = None
    op_completed_bytes: int | None = None
    op_layers: int | None = None

    def add_output(self, text: Any, reasoning: Any = None) -> None:
        """Keep streamed answer text and reasoning (content capture only)."""
        if isinstance(text, str) and text:
            if self.output_text is None:
                self.output_text = []
            self.output_text.append(text)
        if isinstance(reasoning, str) and reasoning:
            if self.output_reasoning is None:
                self.output_reasoning = []
            self.output_reasoning.append(reasoning)

    def add_tool_call(self, name: str | None, call_id: str | None) -> None:
        """Remember a tool call the model asked for (names and ids only)."""
        if name:
            if self.tool_call_names is None:
                self.tool_call_names = []
            self.tool_call_names.append(name)
        if call_id:
            if self.tool_call_ids is None:
                self.tool_call_ids = []
            self.tool_call_ids.append(call_id)


class Steady(NamedTuple):
    """A stream parser's steady state, told to the observer.

    Past its first records, a stream is ordinary records the parser only counts. A
    chunk that starts with ``head`` (if any), ends with (one of) ``tail`` and holds
    ``lines`` newlines is one of those: the observer adds it to ``LLMCall.chunks``
    itself and spares a call into the parser for every token.
    """

    head: bytes
    tail: tuple[bytes, ...]
    lines: int


class Parser(Protocol):
    """Sans-I/O reader of one response body; the observer feeds it raw bytes."""

    @property
    def steady(self) -> Steady | None:
        """Set while the next ordinary record would only be counted; read after a feed."""

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; return True once the final record has been read."""

    def close(self) -> None:
        """The body ended (exhausted): read what is left and judge completeness."""


class Adapter(Protocol):
    """Wire-format knowledge for one protocol family (one module each)."""

    name: str

    def read_request(self, call: LLMCall, body: Mapping[str, Any]) -> None:
        """Fill the request half of ``call`` from the parsed JSON request body."""

    def parser(self, call: LLMCall, content_type: str) -> Parser:
        """A parser for a successful response with this content type."""


@dataclass(frozen=True, slots=True)
class Routes:
    """What one adapter module serves; the dispatcher's table is built from these.

    ``endpoints`` maps request paths to ``gen_ai.operation.name``; every path starts
    with ``prefix``, which is also how a server mounted under a path of its own
    (``/ollama/api/chat`` behind a reverse proxy) is still recognised. ``provider`` is
    the provider the API itself names (``ollama`` for Ollama's native paths); None
    when several servers speak it and configuration decides by host.
    """

    adapter: Adapter
    endpoints: Mapping[str, str]
    prefix: str
    provider: str | None = None
    method: str = "POST"
    """HTTP method of every path here (``DELETE /api/delete``); only POSTs are found mounted."""


class Endpoint(NamedTuple):
    """What a matched request is: who reads it, which operation, whose API (see ``Routes``)."""

    adapter: Adapter
    operation: str
    provider: str | None
