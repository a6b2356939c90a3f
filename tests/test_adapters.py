"""Wire formats: request fields and response parsers, whatever the chunking."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from otel_llm import semconv as sc
from otel_llm._config import Settings
from otel_llm._span import response_attributes
from otel_llm._types import Adapter, LLMCall
from otel_llm.adapters import match, ollama, openai_compat
from tests.test_framing import split
from tests.wire import EMBED_BODY, NDJSON_CHAT, SSE_CHAT


def new_call(adapter: Adapter, operation: str = sc.CHAT, **settings: Any) -> LLMCall:
    return LLMCall(
        operation=operation,
        provider="ollama",
        adapter=adapter,
        settings=Settings(**settings),
        server_address="127.0.0.1",
        server_port=11434,
        start_ns=time.perf_counter_ns(),
    )


def parse(adapter: Adapter, chunks: list[bytes], ctype: str, **kw: Any) -> dict[str, Any]:
    call = new_call(adapter, **kw)
    call.stream = True
    call.status_code = 200
    parser = adapter.parser(call, ctype)
    final = False
    for chunk in chunks:
        if chunk and parser.feed(chunk):
            final = True
            break
    if not final:
        parser.close()
    call.ended_by = "final" if final else "exhausted"
    return dict(response_attributes(call))


class TestMatch:
    def test_endpoints(self) -> None:
        """Each LLM endpoint maps to its operation; others, and non-POST, to nothing."""
        assert ("chat", "ollama") == match("POST", "/api/chat")[1:]  # type: ignore[index]
        assert ("text_completion", "ollama") == match("POST", "/api/generate")[1:]  # type: ignore[index]
        assert ("embeddings", None) == match("POST", "/v1/embeddings")[1:]  # type: ignore[index]
        assert ("chat", "ollama") == match("POST", "/ollama/api/chat")[1:]  # type: ignore[index]
        assert None is match("GET", "/api/chat")
        assert None is match("POST", "/api/tags")
        assert None is match("POST", "/v1/models")


class TestOllamaRequest:
    def test_generate_defaults_to_streaming(self) -> None:
        """Native generate/chat stream unless stream:false is sent."""
        call = new_call(ollama.adapter, sc.TEXT_COMPLETION)
        ollama.adapter.read_request(call, {"model": "llama3.2", "prompt": "hi", "think": "high"})
        assert (True, "llama3.2") == (call.stream, call.request_model)
        assert {sc.REQUEST_REASONING_LEVEL: "high"} == call.request_attributes

    def test_embed_never_streams(self) -> None:
        """Embeddings carry no stream flag."""
        call = new_call(ollama.adapter, sc.EMBEDDINGS)
        ollama.adapter.read_request(call, {"model": "all-minilm", "input": "x"})
        assert call.stream is False


class TestOpenAIRequest:
    def test_fields(self) -> None:
        """max_tokens, stop, n, response_format, reasoning_effort and include_usage."""
        call = new_call(openai_compat.adapter)
        openai_compat.adapter.read_request(
            call,
            {
                "model": "llama3.2",
                "stream": True,
                "max_tokens": 5,
                "stop": "END",
                "n": 2,
                "response_format": {"type": "json_object"},
                "reasoning_effort": "low",
                "temperature": 1,
                "seed": 3,
            },
        )
        assert {
            sc.REQUEST_MAX_TOKENS: 5,
            sc.REQUEST_STOP_SEQUENCES: ("END",),
            sc.REQUEST_CHOICE_COUNT: 2,
            sc.OUTPUT_TYPE: "json",
            sc.REQUEST_REASONING_LEVEL: "low",
            sc.REQUEST_TEMPERATURE: 1.0,
            sc.REQUEST_SEED: 3,
        } == call.request_attributes
        assert call.usage_missing is True


class TestNdjsonParser:
    @given(st.lists(st.integers(0, 2000), max_size=20))
    def test_any_split_same_attributes(self, cuts: list[int]) -> None:
        """The reference chat stream gives the same attributes however it is chunked."""
        whole = parse(ollama.adapter, NDJSON_CHAT, "application/x-ndjson")
        pieces = parse(ollama.adapter, split(b"".join(NDJSON_CHAT), cuts), "application/x-ndjson")
        assert whole == pieces
        assert 173 == pieces[sc.USAGE_INPUT_TOKENS]

    def test_last_line_without_newline(self) -> None:
        """A final record with no trailing newline is still read at the end of the body."""
        chunks = [*NDJSON_CHAT[:-1], NDJSON_CHAT[-1].rstrip(b"\n")]
        attrs = parse(ollama.adapter, chunks, "application/x-ndjson")
        assert (41, sc.ERROR_TYPE in attrs) == (attrs[sc.USAGE_OUTPUT_TOKENS], False)

    def test_content_captured_when_on(self) -> None:
        """With capture on, text, reasoning and tool calls form the output message."""
        attrs = parse(ollama.adapter, NDJSON_CHAT, "application/x-ndjson", capture_content=True)
        assert (
            '[{"role":"assistant","parts":[{"type":"reasoning","content":"The"},'
            '{"type":"text","content":"Sunny"},{"type":"tool_call","name":"get_weather",'
            '"id":"call_k3v9x0qa","arguments":{"city":"Tokyo"}}],"finish_reason":"stop"}]'
        ) == attrs[sc.OUTPUT_MESSAGES]

    def test_large_embed_body_scanned_not_kept(self) -> None:
        """A body over the buffer limit is read from its head and tail."""
        vector = b"[" + b",".join([b"0.0123456"] * 1024) + b"]"
        body = (
            b'{"model":"all-minilm","embeddings":['
            + b",".join([vector] * 100)
            + b'],"total_duration":5,"load_duration":1,"prompt_eval_count":16}'
        )
        call = new_call(ollama.adapter, sc.EMBEDDINGS)
        call.status_code = 200
        parser = ollama.adapter.parser(call, "application/json; charset=utf-8")
        for chunk in split(body, list(range(0, len(body), 4096))):
            parser.feed(chunk)
        parser.close()
        assert (1024, 16, "all-minilm") == (
            call.embedding_dimensions,
            call.input_tokens,
            call.response_model,
        )

    def test_embed_small_body(self) -> None:
        """The reference /api/embed body."""
        call = new_call(ollama.adapter, sc.EMBEDDINGS)
        call.status_code = 200
        parser = ollama.adapter.parser(call, "application/json; charset=utf-8")
        parser.feed(EMBED_BODY)
        parser.close()
        assert (3, 16) == (call.embedding_dimensions, call.input_tokens)


class TestSseParser:
    @given(st.lists(st.integers(0, 2000), max_size=20))
    def test_any_split_same_attributes(self, cuts: list[int]) -> None:
        """The reference SSE stream gives the same attributes however it is chunked."""
        whole = parse(openai_compat.adapter, SSE_CHAT, "text/event-stream")
        pieces = parse(openai_compat.adapter, split(b"".join(SSE_CHAT), cuts), "text/event-stream")
        assert whole == pieces
        assert (26, 10) == (pieces[sc.USAGE_INPUT_TOKENS], pieces[sc.USAGE_OUTPUT_TOKENS])

    def test_streamed_tool_call_fragments(self) -> None:
        """Streamed tool calls: id and name come once, arguments in fragments."""
        head = b'"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m"'
        events = [
            b"data: {" + head + b',"choices":[{"index":0,"delta":{"role":"assistant",'
            b'"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":'
            b'{"name":"get_weather","arguments":"{\\"ci"}}]},"finish_reason":null}]}\n\n',
            b"data: {" + head + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
            b'"function":{"arguments":"ty\\":\\"Tokyo\\"}"}}]},"finish_reason":null}]}\n\n',
            b"data: {"
            + head
            + b',"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
            b"data: [DONE]\n\n",
        ]
        attrs = parse(openai_compat.adapter, events, "text/event-stream", capture_content=True)
        assert ("get_weather",) == attrs[sc.TOOL_CALL_NAMES]
        assert ("tool_calls",) == tuple(attrs[sc.RESPONSE_FINISH_REASONS])
        assert '"arguments":{"city":"Tokyo"}' in str(attrs[sc.OUTPUT_MESSAGES])


class TestSteadyState:
    """Ordinary records are only counted; anything else in the same chunk is still read."""

    def test_ndjson_tool_call_beside_ordinary_records(self) -> None:
        """A tool call sharing a chunk with an ordinary record is not missed."""
        text = NDJSON_CHAT[1]
        chunks = [text, text, NDJSON_CHAT[2] + text, text, NDJSON_CHAT[3]]
        attrs = parse(ollama.adapter, chunks, "application/x-ndjson")
        assert (("get_weather",), 6) == (attrs[sc.TOOL_CALL_NAMES], attrs[sc.STREAM_CHUNKS])

    def test_sse_tool_call_beside_ordinary_deltas(self) -> None:
        """A /v1 tool-call delta sharing a chunk with an ordinary delta is not missed."""
        head = SSE_CHAT[0].split(b',"choices"')[0]
        tool = (
            head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":"",'
            b'"tool_calls":[{"id":"call_1","index":0,"type":"function","function":'
            b'{"name":"lookup","arguments":"{}"}}]},"finish_reason":null}]}\n\n'
        )
        text = SSE_CHAT[1]
        chunks = [SSE_CHAT[0], text, text, tool + text, text, *SSE_CHAT[2:]]
        attrs = parse(openai_compat.adapter, chunks, "text/event-stream")
        assert (("lookup",), ("call_1",), 8) == (
            attrs[sc.TOOL_CALL_NAMES],
            attrs[sc.TOOL_CALL_IDS],
            attrs[sc.STREAM_CHUNKS],
        )


class TestCaps:
    def test_tool_calls_capped_in_number(self) -> None:
        """A stream of endless tool calls keeps at most MAX_ITEMS names and ids."""
        from otel_llm.adapters._common import MAX_ITEMS

        record = NDJSON_CHAT[2]
        attrs = parse(
            ollama.adapter, [record] * (MAX_ITEMS + 50) + [NDJSON_CHAT[3]], "application/x-ndjson"
        )
        assert (MAX_ITEMS, MAX_ITEMS) == (
            len(attrs[sc.TOOL_CALL_NAMES]),
            len(attrs[sc.TOOL_CALL_IDS]),
        )

    def test_finish_reason_index_bounded(self) -> None:
        """A choice index of a billion does not grow the finish reasons list."""
        head = SSE_CHAT[0].split(b',"choices"')[0]
        event = head + b',"choices":[{"index":1000000000,"delta":{},"finish_reason":"stop"}]}\n\n'
        attrs = parse(
            openai_compat.adapter, [SSE_CHAT[0], event, SSE_CHAT[-1]], "text/event-stream"
        )
        assert sc.RESPONSE_FINISH_REASONS not in attrs
