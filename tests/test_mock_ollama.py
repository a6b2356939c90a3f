"""The mock Ollama server, through real sockets: real clients, then the raw bytes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from otel_llm.testing.mock_ollama import MockOllama, Scenario, ToolCall

REPLY = Scenario().reply  # "The sky is blue because air scatters blue light."
TOKENS = ["The", " sky", " is", " blue", " because", " air", " scatters", " blue", " light."]
QUESTION: Any = [{"role": "user", "content": "Why is the sky blue?"}]  # 5 prompt tokens
THINKING = "Tokyo is in Japan."
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SCENARIOS = {
    "qwen3:8b": Scenario(
        thinking=THINKING, tool_calls=[ToolCall("get_weather", {"city": "Tokyo"})]
    ),
    "escape": Scenario(reply="Use <a&b> here"),
    "broken": Scenario(error_after=2),
    "down": Scenario(status=503, error_message="server overloaded"),
    "slow": Scenario(ttft=0.25),
    "wide": Scenario(embedding_dim=384),
    "long": Scenario(chunks=50),
}
CREATED_AT = re.compile(rb'"created_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{0,8}[1-9])?Z)"')
CALL_ID = re.compile(r"call_[a-z0-9]{8}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(SCENARIOS) as server:
        yield server


@pytest.fixture
def client(mock: MockOllama) -> Iterator[ollama.Client]:
    c = ollama.Client(host=mock.url)
    yield c
    c.close()  # type: ignore[no-untyped-call]


@pytest.fixture
async def aclient(mock: MockOllama) -> AsyncIterator[ollama.AsyncClient]:
    c = ollama.AsyncClient(host=mock.url)
    yield c
    await c.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def oai(mock: MockOllama) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=mock.url + "/v1", api_key="x", max_retries=0)
    yield c
    c.close()


@pytest.fixture
def http(mock: MockOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url) as c:
        yield c


def raw_exchange(mock: MockOllama, path: str, payload: Any) -> tuple[dict[str, str], list[bytes]]:
    """POST over a bare socket; return the headers and the HTTP chunks exactly as framed."""
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {mock.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    data = b""
    with socket.create_connection(("127.0.0.1", mock.port)) as sock:
        sock.sendall(head.encode() + body)
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, rest = data.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    return headers, chunks


def go_json(line: bytes) -> bytes:
    """Re-encode a line compactly, key order kept: equal iff the line is Go-style JSON."""
    return json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False).encode()


class TestLifecycle:
    def test_binds_loopback_and_stops(self) -> None:
        """An ephemeral port on 127.0.0.1 serves until stop()."""
        with MockOllama() as server:
            assert server.port != 0
            assert f"http://127.0.0.1:{server.port}" == server.url
            assert f"127.0.0.1:{server.port}" == server.host
            assert "Ollama is running" == httpx.get(server.url).text
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url)

    def test_idle_connection_stays_open_and_stop_closes_it(self) -> None:
        """Like Ollama's Go server, the mock keeps an idle keep-alive connection past
        uvicorn's 5 s default (a pooled client reuses it mid-POST), and it is closed by the
        time ``stop`` returns."""
        request = (
            b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s"
        )
        body = b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}'
        server = MockOllama().start()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                replies = []
                for pause in (0.0, 6.0):  # the second request after uvicorn's default idle
                    time.sleep(pause)
                    sock.sendall(request % (len(body), body))
                    replies.append(_one_response(sock))
                assert [200, 200] == [code for code, _ in replies]
                assert all(b'"done":true' in reply for _, reply in replies)
                server.stop()
                sock.setblocking(False)  # already closed when stop() returns: no waiting
                assert b"" == sock.recv(1)
        finally:
            server.stop()

    def test_cli_serves_until_interrupt(self) -> None:
        """`mock-ollama` prints its URL, serves, and exits 0 on Ctrl-C."""
        root = Path(__file__).resolve().parents[1]
        cmd = [sys.executable, "-m", "otel_llm.testing.mock_ollama", "--port", "0"]
        args = [*cmd, "--reply", "hi there"]
        with subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, text=True) as proc:
            try:
                assert proc.stdout is not None
                url = proc.stdout.readline().strip()
                payload = {"model": "llama3.2", "prompt": "x", "stream": False}
                answer = httpx.post(url + "/api/generate", json=payload).json()["response"]
            finally:
                proc.send_signal(signal.SIGINT)
                returncode = proc.wait(timeout=10)
        assert ("hi there", 0) == (answer, returncode)


class TestOllamaClient:
    def test_chat(self, client: ollama.Client) -> None:
        """A non-streaming chat carries the reply and the documented counts and durations."""
        r = client.chat("llama3.2", messages=QUESTION)
        expected = (REPLY, "stop", 5, 9, 5_000_000, 90_000_000, 1_000_000, 96_000_000)
        actual = (
            r.message.content,
            r.done_reason,
            r.prompt_eval_count,
            r.eval_count,
            r.prompt_eval_duration,
            r.eval_duration,
            r.load_duration,
            r.total_duration,
        )
        assert expected == actual

    def test_chat_stream(self, client: ollama.Client) -> None:
        """A streamed chat sends one token per chunk, then a done record with the counts."""
        parts = list(client.chat("llama3.2", messages=QUESTION, stream=True))
        assert TOKENS == [p.message.content for p in parts[:-1]]
        assert (True, "stop", 9, 5) == (
            parts[-1].done,
            parts[-1].done_reason,
            parts[-1].eval_count,
            parts[-1].prompt_eval_count,
        )

    def test_generate(self, client: ollama.Client) -> None:
        """Generate returns the reply and a context of prompt + eval ids."""
        r = client.generate("llama3.2", "Why is the sky blue?")
        assert (REPLY, 14) == (r.response, len(r.context or []))

    def test_generate_stream(self, client: ollama.Client) -> None:
        """Streamed generate pieces join to the reply."""
        parts = list(client.generate("llama3.2", "Why is the sky blue?", stream=True))
        assert REPLY == "".join(p.response or "" for p in parts)

    def test_embed(self, client: ollama.Client) -> None:
        """Embed answers one vector per input, summing prompt counts."""
        r = client.embed("all-minilm", ["Why is the sky blue?", "green"])
        assert ([8, 8], 6) == ([len(v) for v in r.embeddings], r.prompt_eval_count)

    def test_embeddings_legacy(self, client: ollama.Client) -> None:
        """The legacy endpoint answers the same vector, widened to float64."""
        legacy = client.embeddings("all-minilm", "Why is the sky blue?").embedding
        modern = client.embed("all-minilm", "Why is the sky blue?").embeddings[0]
        assert pytest.approx(modern, rel=1e-6) == list(legacy)

    def test_tool_call(self, client: ollama.Client) -> None:
        """With tools offered, the scenario's call comes back with an object argument."""
        r = client.chat("qwen3:8b", messages=QUESTION, tools=[WEATHER_TOOL])
        call = (r.message.tool_calls or [])[0]
        assert ("get_weather", {"city": "Tokyo"}) == (call.function.name, call.function.arguments)

    def test_thinking(self, client: ollama.Client) -> None:
        """With think on, thinking precedes content and counts as output."""
        r = client.chat("qwen3:8b", messages=QUESTION, think=True)
        assert (THINKING, REPLY, 13) == (r.message.thinking, r.message.content, r.eval_count)

    def test_unknown_model(self, client: ollama.Client) -> None:
        """An unknown model is a 404 ResponseError."""
        with pytest.raises(ollama.ResponseError) as info:
            client.chat("llama9", messages=QUESTION)
        assert (404, "model 'llama9' not found") == (info.value.status_code, info.value.error)

    def test_mid_stream_error(self, client: ollama.Client) -> None:
        """An error line mid-stream raises after the chunks before it."""
        seen = []
        with pytest.raises(ollama.ResponseError) as info:
            for part in client.chat("broken", messages=QUESTION, stream=True):
                seen.append(part.message.content)
        assert (TOKENS[:2], -1) == (seen, info.value.status_code)

    def test_status_error(self, client: ollama.Client) -> None:
        """A scenario status answers before any byte, with Ollama's error JSON."""
        with pytest.raises(ollama.ResponseError) as info:
            client.chat("down", messages=QUESTION)
        assert (503, "server overloaded") == (info.value.status_code, info.value.error)

    def test_model_listing(self, client: ollama.Client) -> None:
        """list, ps and show parse with the real client's models."""
        names = [m.model for m in client.list().models]
        assert "llama3.2:latest" in names
        assert "llama3.2:latest" in [m.model for m in client.ps().models]
        assert ["completion", "tools", "thinking"] == client.show("qwen3:8b").capabilities


class TestAsyncOllamaClient:
    @pytest.mark.anyio
    async def test_chat(self, aclient: ollama.AsyncClient) -> None:
        """A non-streaming chat carries the reply and counts."""
        r = await aclient.chat("llama3.2", messages=QUESTION)
        assert (REPLY, 5, 9) == (r.message.content, r.prompt_eval_count, r.eval_count)

    @pytest.mark.anyio
    async def test_chat_stream(self, aclient: ollama.AsyncClient) -> None:
        """A streamed chat sends one token per chunk."""
        parts = [p async for p in await aclient.chat("llama3.2", messages=QUESTION, stream=True)]
        assert (TOKENS, 9) == ([p.message.content for p in parts[:-1]], parts[-1].eval_count)

    @pytest.mark.anyio
    async def test_generate(self, aclient: ollama.AsyncClient) -> None:
        """Generate returns the reply."""
        assert REPLY == (await aclient.generate("llama3.2", "Why is the sky blue?")).response

    @pytest.mark.anyio
    async def test_embed(self, aclient: ollama.AsyncClient) -> None:
        """Embed answers one vector per input."""
        r = await aclient.embed("all-minilm", ["a b", "c"])
        assert ([8, 8], 3) == ([len(v) for v in r.embeddings], r.prompt_eval_count)

    @pytest.mark.anyio
    async def test_embeddings_legacy(self, aclient: ollama.AsyncClient) -> None:
        """The legacy endpoint answers one vector."""
        assert 8 == len((await aclient.embeddings("all-minilm", "hello")).embedding)

    @pytest.mark.anyio
    async def test_tool_call(self, aclient: ollama.AsyncClient) -> None:
        """With tools offered, the scenario's call comes back."""
        r = await aclient.chat("qwen3:8b", messages=QUESTION, tools=[WEATHER_TOOL])
        assert "get_weather" == (r.message.tool_calls or [])[0].function.name

    @pytest.mark.anyio
    async def test_thinking(self, aclient: ollama.AsyncClient) -> None:
        """Streamed thinking arrives before the content."""
        stream = await aclient.chat("qwen3:8b", messages=QUESTION, think=True, stream=True)
        parts = [p async for p in stream]
        thinking = "".join(p.message.thinking or "" for p in parts)
        content = "".join(p.message.content or "" for p in parts)
        assert (THINKING, REPLY) == (thinking, content)

    @pytest.mark.anyio
    async def test_unknown_model(self, aclient: ollama.AsyncClient) -> None:
        """An unknown model is a 404 ResponseError."""
        with pytest.raises(ollama.ResponseError) as info:
            await aclient.generate("llama9", "hi")
        assert 404 == info.value.status_code

    @pytest.mark.anyio
    async def test_mid_stream_error(self, aclient: ollama.AsyncClient) -> None:
        """An error line mid-stream raises."""
        with pytest.raises(ollama.ResponseError) as info:
            async for _ in await aclient.chat("broken", messages=QUESTION, stream=True):
                pass
        assert "simulated failure" == info.value.error


class TestOpenAIClient:
    def test_chat(self, oai: openai.OpenAI) -> None:
        """A chat completion carries the reply, usage and Ollama's id and fingerprint."""
        r = oai.chat.completions.create(model="llama3.2", messages=QUESTION)
        assert r.usage is not None
        assert (REPLY, "stop", 5, 9, 14, "fp_ollama") == (
            r.choices[0].message.content,
            r.choices[0].finish_reason,
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
            r.usage.total_tokens,
            r.system_fingerprint,
        )
        assert re.fullmatch(r"chatcmpl-\d{1,3}", r.id)

    def test_chat_stream_without_usage(self, oai: openai.OpenAI) -> None:
        """Without include_usage the stream carries no token counts."""
        chunks = list(oai.chat.completions.create(model="llama3.2", messages=QUESTION, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert (REPLY, "stop", [None] * len(chunks)) == (
            text,
            chunks[-1].choices[0].finish_reason,
            [c.usage for c in chunks],
        )

    def test_chat_stream_with_usage(self, oai: openai.OpenAI) -> None:
        """With include_usage a last, choice-less chunk carries the counts."""
        chunks = list(
            oai.chat.completions.create(
                model="llama3.2",
                messages=QUESTION,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        last = chunks[-1]
        assert last.usage is not None
        assert ([], 5, 9) == (last.choices, last.usage.prompt_tokens, last.usage.completion_tokens)
        assert [None] * (len(chunks) - 1) == [c.usage for c in chunks[:-1]]

    def test_completions(self, oai: openai.OpenAI) -> None:
        """Legacy completions answer text and usage."""
        r = oai.completions.create(model="llama3.2", prompt="Why is the sky blue?")
        assert r.usage is not None
        assert (REPLY, 9) == (r.choices[0].text, r.usage.completion_tokens)

    def test_completions_stream_with_usage(self, oai: openai.OpenAI) -> None:
        """Streamed completions carry zeroed usage per chunk, then the real one."""
        chunks = list(
            oai.completions.create(
                model="llama3.2",
                prompt="Why is the sky blue?",
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        totals = [c.usage.total_tokens if c.usage else None for c in chunks]
        assert (REPLY, [0] * 10 + [14]) == (text, totals)

    def test_embeddings(self, oai: openai.OpenAI) -> None:
        """Embeddings (base64 by default in the client) decode to the native vectors."""
        r = oai.embeddings.create(model="all-minilm", input=["Why is the sky blue?", "x"])
        native = httpx.post(
            str(oai.base_url).replace("/v1/", "/api/embed"),
            json={"model": "all-minilm", "input": "Why is the sky blue?"},
        ).json()["embeddings"][0]
        assert (2, 6) == (len(r.data), r.usage.prompt_tokens)
        assert pytest.approx(native, rel=1e-6) == r.data[0].embedding

    def test_tool_call(self, oai: openai.OpenAI) -> None:
        """Tool calls carry a JSON-string argument and finish with tool_calls."""
        r = oai.chat.completions.create(
            model="qwen3:8b",
            messages=QUESTION,
            tools=[WEATHER_TOOL],
        )
        call: Any = (r.choices[0].message.tool_calls or [])[0]
        assert ("tool_calls", "get_weather", '{"city":"Tokyo"}') == (
            r.choices[0].finish_reason,
            call.function.name,
            call.function.arguments,
        )
        assert CALL_ID.fullmatch(call.id)

    def test_reasoning(self, oai: openai.OpenAI) -> None:
        """reasoning_effort maps to thinking, returned as `reasoning`."""
        r = oai.chat.completions.create(
            model="qwen3:8b",
            messages=QUESTION,
            reasoning_effort="low",
        )
        assert THINKING == getattr(r.choices[0].message, "reasoning", None)

    def test_unknown_model(self, oai: openai.OpenAI) -> None:
        """An unknown model is openai.NotFoundError."""
        with pytest.raises(openai.NotFoundError) as info:
            oai.chat.completions.create(model="llama9", messages=QUESTION)
        assert 404 == info.value.status_code

    @pytest.mark.anyio
    async def test_async_stream(self, mock: MockOllama) -> None:
        """The async client streams the same content."""
        async with openai.AsyncOpenAI(
            base_url=mock.url + "/v1", api_key="x", max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model="llama3.2",
                messages=QUESTION,
                stream=True,
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert REPLY == text


class TestWire:
    def test_native_body_bytes(self, http: httpx.Client) -> None:
        """A non-streaming chat body matches the reference byte for byte."""
        r = http.post(
            "/api/chat", json={"model": "llama3.2", "messages": QUESTION, "stream": False}
        )
        match = CREATED_AT.search(r.content)
        assert match is not None
        expected = (
            b'{"model":"llama3.2","created_at":"' + match.group(1) + b'","message":{"role":'
            b'"assistant","content":"The sky is blue because air scatters blue light."},'
            b'"done":true,"done_reason":"stop","total_duration":96000000,"load_duration":1000000,'
            b'"prompt_eval_count":5,"prompt_eval_duration":5000000,"eval_count":9,'
            b'"eval_duration":90000000}'
        )
        assert expected == r.content
        assert ("application/json; charset=utf-8", str(len(r.content))) == (
            r.headers["content-type"],
            r.headers["content-length"],
        )

    def test_ndjson_one_chunk_per_line(self, mock: MockOllama) -> None:
        """Each NDJSON line is its own HTTP chunk, in Go's compact JSON, ending in done."""
        payload = {"model": "llama3.2", "messages": QUESTION}
        headers, chunks = raw_exchange(mock, "/api/chat", payload)
        assert ("application/x-ndjson", "chunked") == (
            headers["content-type"],
            headers["transfer-encoding"],
        )
        assert "content-length" not in headers
        assert [1] * 10 == [c.count(b"\n") for c in chunks]
        assert all(c.endswith(b"\n") and go_json(c) == c[:-1] for c in chunks)
        final = json.loads(chunks[-1])
        assert ["model", "created_at", "message", "done", "done_reason", "total_duration"] == list(
            final
        )[:6]
        assert (True, 9, {"role": "assistant", "content": ""}) == (
            final["done"],
            final["eval_count"],
            final["message"],
        )

    def test_generate_stream_context(self, mock: MockOllama) -> None:
        """generate's done line puts context before the metrics; raw drops it."""
        _, chunks = raw_exchange(mock, "/api/generate", {"model": "llama3.2", "prompt": "a b"})
        final = json.loads(chunks[-1])
        assert ["done", "done_reason", "context", "total_duration"] == list(final)[3:7]
        assert list(range(1000, 1011)) == final["context"]
        raw_payload = {"model": "llama3.2", "prompt": "a b", "raw": True}
        _, chunks = raw_exchange(mock, "/api/generate", raw_payload)
        assert "context" not in json.loads(chunks[-1])

    def test_sse_framing(self, mock: MockOllama) -> None:
        """SSE events are `data: <json>\\n\\n`; finish, usage and [DONE] share the last write."""
        payload = {
            "model": "llama3.2",
            "messages": QUESTION,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        headers, chunks = raw_exchange(mock, "/v1/chat/completions", payload)
        assert "text/event-stream" == headers["content-type"]
        first = re.fullmatch(
            rb'data: \{"id":"(chatcmpl-\d+)","object":"chat\.completion\.chunk",'
            rb'"created":(\d+),(.*)\}\n\n',
            chunks[0],
        )
        assert first is not None
        prefix = (
            b'"id":"'
            + first.group(1)
            + b'","object":"chat.completion.chunk","created":'
            + first.group(2)
            + b',"model":"llama3.2","system_fingerprint":"fp_ollama"'
        )
        expected_first = (
            b"data: {" + prefix + b',"choices":[{"index":0,"delta":{"role":"assistant",'
            b'"content":"The"},"finish_reason":null}]}\n\n'
        )
        expected_second = (
            b"data: {" + prefix + b',"choices":[{"index":0,"delta":{"content":" sky"},'
            b'"finish_reason":null}]}\n\n'
        )
        expected_last = (
            b"data: {" + prefix + b',"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
            b"\n\ndata: {" + prefix + b',"choices":[],"usage":{"prompt_tokens":5,'
            b'"completion_tokens":9,"total_tokens":14}}\n\ndata: [DONE]\n\n'
        )
        assert (10, expected_first, expected_second, expected_last) == (
            len(chunks),
            chunks[0],
            chunks[1],
            chunks[-1],
        )

    def test_v1_non_stream_ends_with_newline(self, http: httpx.Client) -> None:
        """/v1 single bodies are application/json ending in a newline."""
        r = http.post("/v1/chat/completions", json={"model": "llama3.2", "messages": QUESTION})
        assert ("application/json", True) == (r.headers["content-type"], r.content.endswith(b"\n"))

    def test_html_escape(self, http: httpx.Client) -> None:
        """`<`, `>` and `&` go out as Go's \\u escapes and decode back unchanged."""
        r = http.post("/api/generate", json={"model": "escape", "prompt": "x", "stream": False})
        assert b"Use \\u003ca\\u0026b\\u003e here" in r.content
        assert "Use <a&b> here" == r.json()["response"]

    def test_large_body_is_chunked(self, http: httpx.Client) -> None:
        """Over 2 KB a single body loses content-length and goes out chunked, as in Go."""
        r = http.post("/api/embed", json={"model": "wide", "input": ["a", "b"]})
        assert len(r.content) > 2048
        assert ("chunked", None) == (
            r.headers.get("transfer-encoding"),
            r.headers.get("content-length"),
        )
        assert [384, 384] == [len(v) for v in r.json()["embeddings"]]

    def test_unknown_route(self, http: httpx.Client) -> None:
        """Unknown routes and wrong methods answer gin's plain-text 404."""
        for r in (http.get("/api/nope"), http.get("/api/chat")):
            assert (404, "404 page not found", "text/plain") == (
                r.status_code,
                r.text,
                r.headers["content-type"],
            )

    def test_bad_json(self, http: httpx.Client) -> None:
        """Undecodable JSON is a 400 with Ollama's error object."""
        r = http.post("/api/chat", content=b"{nope")
        assert (400, ["error"]) == (r.status_code, list(r.json()))

    def test_v1_error_shape(self, http: httpx.Client) -> None:
        """/v1 errors use OpenAI's error object."""
        r = http.post("/v1/chat/completions", json={"model": "llama9", "messages": QUESTION})
        expected = (
            b'{"error":{"message":"model \'llama9\' not found","type":"not_found_error",'
            b'"param":null,"code":null}}\n'
        )
        assert (404, expected) == (r.status_code, r.content)

    def test_native_mid_stream_error(self, mock: MockOllama) -> None:
        """error_after sends N chunks, then an error line and no done line."""
        _, chunks = raw_exchange(mock, "/api/chat", {"model": "broken", "messages": QUESTION})
        assert (3, b'{"error":"simulated failure"}\n') == (len(chunks), chunks[-1])

    def test_v1_mid_stream_stop(self, mock: MockOllama) -> None:
        """On /v1 the broken stream just stops: no finish chunk, no [DONE]."""
        payload = {"model": "broken", "messages": QUESTION, "stream": True}
        _, chunks = raw_exchange(mock, "/v1/chat/completions", payload)
        assert (2, False) == (len(chunks), any(b"[DONE]" in c for c in chunks))

    def test_ttft(self, http: httpx.Client) -> None:
        """ttft delays the first byte."""
        start = time.perf_counter()
        http.post("/api/chat", json={"model": "slow", "messages": QUESTION, "stream": False})
        assert time.perf_counter() - start >= 0.2

    def test_requests_recorded(self, mock: MockOllama, http: httpx.Client) -> None:
        """Every request is recorded with lower-case headers and the raw body."""
        http.post("/api/version", content=b"raw", headers={"X-Probe": "yes"})
        last = mock.requests[-1]
        assert ("POST", "/api/version", "yes", b"raw") == (
            last.method,
            last.path,
            last.headers["x-probe"],
            last.body,
        )

    def test_load_only(self, http: httpx.Client) -> None:
        """Empty messages only load the model: done_reason load and no metrics."""
        r = http.post("/api/chat", json={"model": "llama3.2", "messages": []})
        assert ["model", "created_at", "message", "done", "done_reason"] == list(r.json())
        assert "load" == r.json()["done_reason"]

    def test_num_predict(self, http: httpx.Client) -> None:
        """num_predict caps the content tokens and reports length."""
        payload = {
            "model": "llama3.2",
            "prompt": "x",
            "stream": False,
            "options": {"num_predict": 3},
        }
        body = http.post("/api/generate", json=payload).json()
        assert ("The sky is", "length", 3) == (
            body["response"],
            body["done_reason"],
            body["eval_count"],
        )

    def test_chunks(self, mock: MockOllama) -> None:
        """chunks streams exactly that many content lines, cycling the reply."""
        _, chunks = raw_exchange(mock, "/api/chat", {"model": "long", "messages": QUESTION})
        assert (51, 50) == (len(chunks), json.loads(chunks[-1])["eval_count"])

    def test_v1_ids_count_up(self, http: httpx.Client) -> None:
        """/v1 ids are chatcmpl-<k % 999>, k counting answered requests."""
        payload = {"model": "llama3.2", "messages": QUESTION}
        first, second = (http.post("/v1/chat/completions", json=payload).json()["id"] for _ in "ab")
        assert int(second.split("-")[1]) == (int(first.split("-")[1]) + 1) % 999

    def test_root(self, http: httpx.Client) -> None:
        """GET and HEAD / answer like Ollama."""
        get, head = http.get("/"), http.head("/")
        assert ("Ollama is running", "text/plain; charset=utf-8", b"", "17") == (
            get.text,
            get.headers["content-type"],
            head.content,
            head.headers["content-length"],
        )


def _one_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body from ``sock``."""

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the server closed the connection")
        return chunk

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        rest += more()
    return int(head.split(b" ", 2)[1]), rest[:length]
