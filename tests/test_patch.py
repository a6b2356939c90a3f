"""The patch point: idempotent, undone exactly, blind to non-LLM traffic, under every client."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_llm
from otel_llm._patch import JSON_EXTENSION
from tests.conftest import Spans
from tests.wire import CHAT_BODY, EMBED_BODY, V1_CHAT_BODY

MODULES = [pytest.param(httpx, id="httpx"), pytest.param(httpx2, id="httpx2")]
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hello"}], "stream": False}


class Recorder:
    """A MockTransport handler that answers like Ollama and remembers what it saw."""

    def __init__(self, module: Any, body: bytes = CHAT_BODY, status: int = 200) -> None:
        self.module = module
        self.body = body
        self.status = status
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        return self.module.Response(
            self.status,
            headers={"content-type": "application/json; charset=utf-8"},
            stream=self.module.ByteStream(self.body),
        )

    def client(self, base_url: str = "http://127.0.0.1:11434") -> Any:
        return self.module.Client(transport=self.module.MockTransport(self), base_url=base_url)


@pytest.mark.parametrize("module", MODULES)
class TestPatch:
    def test_uninstrument_restores_originals(self, module: Any, collected: Spans) -> None:
        """Every patched callable is put back, and calls make no spans afterwards."""
        names = ("send", "build_request")
        classes = (module.Client, module.AsyncClient)
        before = [getattr(c, n) for c in classes for n in names]
        own = [n in vars(c) for c in classes for n in names]
        otel_llm.instrument()
        during = [getattr(c, n) for c in classes for n in names]
        assert all(a != b for a, b in zip(before, during, strict=True))
        otel_llm.uninstrument()
        assert before == [getattr(c, n) for c in classes for n in names]
        assert own == [n in vars(c) for c in classes for n in names]  # nothing left behind
        Recorder(module).client().post("/api/chat", json=CHAT)
        assert [] == collected.llm()

    def test_json_request_read_from_the_object(
        self, module: Any, spans: Spans, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A json= body is read from the object the SDK handed httpx: not one byte of a
        1 MB prompt is stepped over or decoded, and the fields are the same."""
        from otel_llm import _fields

        def untouched(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the encoded request was read")

        monkeypatch.setattr(_fields, "top_level", untouched)
        monkeypatch.setattr("otel_llm.adapters._common.top_level", untouched)
        body = {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "x" * 1_000_000}],
            "stream": False,
            "options": {"temperature": 0.2, "num_predict": 64, "stop": ["END"]},
        }
        extensions = {"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}}
        client = Recorder(module).client()
        request = client.build_request("POST", "/api/chat", json=body, extensions=extensions)
        assert ["timeout"] == list(extensions)  # the caller's dict is not written to
        other = client.build_request("POST", "/v2/upload", json=body)
        assert JSON_EXTENSION not in other.extensions  # only LLM calls keep it
        assert JSON_EXTENSION in request.extensions  # kept for the send to read
        client.send(request)
        assert JSON_EXTENSION not in request.extensions  # not held once read
        attrs = spans.one().attributes
        assert ("llama3.2", 0.2, 64, ("END",)) == (
            attrs["gen_ai.request.model"],
            attrs["gen_ai.request.temperature"],
            attrs["gen_ai.request.max_tokens"],
            attrs["gen_ai.request.stop_sequences"],
        )
        assert "gen_ai.request.stream" not in attrs
        client.close()

    def test_content_request_still_read_from_bytes(self, module: Any, spans: Spans) -> None:
        """A body handed over as bytes (no json=) is read from the bytes, as before."""
        client = Recorder(module).client()
        client.post("/api/chat", content=json.dumps(CHAT).encode())
        assert "chat llama3.2" == spans.one().name
        client.close()

    def test_context_during_send(self, module: Any, spans: Spans) -> None:
        """While the original send runs (sync and async), the current span is ours, the
        call is marked in progress, and the caller's own context values are still there;
        afterwards the caller's context is back as it was."""
        import asyncio

        from opentelemetry import baggage, context

        from otel_llm._begin import in_call

        seen: list[tuple[Any, bool, object]] = []
        recorder = Recorder(module)

        def handler(request: Any) -> Any:
            seen.append((trace.get_current_span(), in_call(), baggage.get_baggage("team")))
            return recorder(request)

        async def ahandler(request: Any) -> Any:
            return handler(request)

        async def acall() -> None:
            transport = module.MockTransport(ahandler)
            async with module.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:11434"
            ) as client:
                await client.post("/api/chat", json=CHAT)

        token = context.attach(baggage.set_baggage("team", "search"))
        try:
            outer = context.get_current()
            client = module.Client(
                transport=module.MockTransport(handler), base_url="http://127.0.0.1:11434"
            )
            client.post("/api/chat", json=CHAT)
            assert outer == context.get_current()
            asyncio.run(acall())
            assert outer == context.get_current()
        finally:
            context.detach(token)
        ended = spans.llm()
        assert 2 == len(ended)
        for (span, marked, team), finished in zip(seen, ended, strict=True):
            assert span.get_span_context().span_id == finished.context.span_id
            assert marked is True
            assert "search" == team
        assert not in_call()

    def test_body_a_transport_already_read(self, module: Any, spans: Spans) -> None:
        """A transport that hands back a response it read itself: streamed or not, the
        body is parsed whole and the span ends with the response's fields."""

        def handler(request: Any) -> Any:
            response = Recorder(module)(request)
            response.read()
            return response

        client = module.Client(transport=module.MockTransport(handler))
        url = "http://127.0.0.1:11434/api/chat"
        with client.stream("POST", url, json=CHAT) as response:
            assert response.is_stream_consumed and CHAT_BODY == response.read()
        client.post(url, json=CHAT)
        assert 2 == len(spans.llm())
        for span in spans.llm():
            assert (("stop",), 26, 10) == (
                span.attributes["gen_ai.response.finish_reasons"],
                span.attributes["gen_ai.usage.input_tokens"],
                span.attributes["gen_ai.usage.output_tokens"],
            )
        client.close()

    def test_instrument_is_idempotent(self, module: Any, collected: Spans) -> None:
        """Calling instrument() twice still makes one span per call."""
        otel_llm.instrument()
        patched = module.Client.send
        otel_llm.instrument()
        assert patched is module.Client.send
        assert otel_llm.is_instrumented()
        Recorder(module).client().post("/api/chat", json=CHAT)
        assert 1 == len(collected.llm())

    def test_client_created_before_instrument(self, module: Any, collected: Spans) -> None:
        """A client built before instrument() is traced too."""
        client = Recorder(module).client()
        otel_llm.instrument()
        client.post("/api/chat", json=CHAT)
        assert "chat llama3.2" == collected.one().name

    def test_non_llm_request_untouched(self, module: Any, spans: Spans) -> None:
        """Listing models and other traffic: no span, no injected header."""
        recorder = Recorder(module, body=b'{"models":[]}')
        client = recorder.client()
        client.get("/api/tags")
        client.get("/api/ps")
        client.post("/v1/models")
        assert [] == spans.all()
        assert all("traceparent" not in r.headers for r in recorder.requests)

    def test_traceparent_injected(self, module: Any, spans: Spans) -> None:
        """The outgoing LLM request carries our span's context."""
        recorder = Recorder(module)
        recorder.client().post("/api/chat", json=CHAT)
        ctx = spans.one().context
        expected = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
        assert expected == recorder.requests[0].headers["traceparent"]

    def test_non_streaming_attributes(self, module: Any, spans: Spans) -> None:
        """A non-streamed /api/chat: request and response attributes as the reference maps them."""
        body = {
            **CHAT,
            "options": {
                "temperature": 0.1,
                "top_p": 0.9,
                "top_k": 40,
                "num_predict": 64,
                "seed": 7,
                "stop": ["\n"],
            },
            "format": "json",
        }
        response = Recorder(module).client().post("/api/chat", json=body)
        assert CHAT_BODY == response.content
        span = spans.one()
        assert trace.SpanKind.CLIENT == span.kind
        expected = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "ollama",
            "gen_ai.request.model": "llama3.2",
            "server.address": "127.0.0.1",
            "server.port": 11434,
            "gen_ai.request.temperature": 0.1,
            "gen_ai.request.top_p": 0.9,
            "gen_ai.request.top_k": 40,
            "gen_ai.request.max_tokens": 64,
            "gen_ai.request.seed": 7,
            "gen_ai.request.stop_sequences": ("\n",),
            "gen_ai.output.type": "json",
            "gen_ai.response.model": "llama3.2",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 26,
            "gen_ai.usage.output_tokens": 10,
            "ollama.total_duration": 0.402712458,
            "ollama.load_duration": 0.0218345,
            "ollama.prompt_eval_duration": 0.093215,
            "ollama.eval_duration": 0.179433,
            "ollama.cold_load": False,
            "http.response.status_code": 200,
        }
        assert expected == {k: span.attributes[k] for k in expected}
        assert "gen_ai.request.stream" not in span.attributes
        assert pytest.approx(10 / 0.179433) == span.attributes["ollama.decode.tokens_per_second"]
        assert pytest.approx(26 / 0.093215) == span.attributes["ollama.prefill.tokens_per_second"]

    def test_embed(self, module: Any, spans: Spans) -> None:
        """/api/embed: embeddings operation, dimension count, input tokens."""
        Recorder(module, body=EMBED_BODY).client().post(
            "/api/embed", json={"model": "all-minilm", "input": ["a", "b"]}
        )
        span = spans.one()
        assert "embeddings all-minilm" == span.name
        assert 3 == span.attributes["gen_ai.embeddings.dimension.count"]
        assert 16 == span.attributes["gen_ai.usage.input_tokens"]

    def test_v1_on_unknown_host_confirmed_as_ollama(self, module: Any, spans: Spans) -> None:
        """/v1 on a host we don't know is relabelled ollama when its fingerprint says so."""
        Recorder(module, body=V1_CHAT_BODY).client("http://10.0.0.5:8080").post(
            "/v1/chat/completions", json={"model": "llama3.2", "messages": []}
        )
        span = spans.one()
        assert "ollama" == span.attributes["gen_ai.provider.name"]
        assert "chatcmpl-417" == span.attributes["gen_ai.response.id"]

    def test_legacy_attributes(self, module: Any, collected: Spans) -> None:
        """The switch adds gen_ai.system and the old usage names."""
        otel_llm.instrument(legacy_attributes=True)
        Recorder(module).client().post("/api/chat", json=CHAT)
        span = collected.one()
        assert "ollama" == span.attributes["gen_ai.system"]
        assert 26 == span.attributes["gen_ai.usage.prompt_tokens"]
        assert 10 == span.attributes["gen_ai.usage.completion_tokens"]

    def test_authorization_never_recorded(self, module: Any, spans: Spans) -> None:
        """API keys sent by the client appear nowhere in the span."""
        client = Recorder(module).client()
        client.post("/api/chat", json=CHAT, headers={"Authorization": "Bearer sk-secret-123"})
        span = spans.one()
        assert "sk-secret-123" not in json.dumps(dict(span.attributes), default=str)


class TestProviders:
    def test_provider_rules(self) -> None:
        """Native paths and Ollama hosts are ollama; known hosts keep their name."""
        from otel_llm._config import Options, resolve

        settings = resolve(Options(ollama_hosts=["gpu-box:8000"], providers={"vllm.local": "vllm"}))
        assert "ollama" == settings.provider_for("anything", 80, "ollama")
        assert "ollama" == settings.provider_for("127.0.0.1", 11434)
        assert "ollama" == settings.provider_for("gpu-box", 8000)
        assert "openai" == settings.provider_for("api.openai.com", 443)
        assert "vllm" == settings.provider_for("vllm.local", 8000)
        assert "openai" == settings.provider_for("somewhere", 9000)

    def test_ollama_host_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OLLAMA_HOST (Ollama's own syntax) marks that server as Ollama."""
        from otel_llm._config import resolve

        monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:9999")
        assert "ollama" == resolve().provider_for("127.0.0.1", 9999)


class TestContent:
    def test_off_by_default(self, spans: Spans) -> None:
        """No prompt or completion text is recorded unless asked."""
        Recorder(httpx).client().post("/api/chat", json=CHAT)
        attrs = spans.one().attributes
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output.messages")) for k in attrs)
        assert "Hello" not in json.dumps(dict(attrs), default=str)

    def test_env_flag_turns_it_on(self, collected: Spans, monkeypatch: pytest.MonkeyPatch) -> None:
        """The standard OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT flag works."""
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        otel_llm.instrument()
        Recorder(httpx).client().post("/api/chat", json=CHAT)
        attrs = collected.one().attributes
        assert [{"role": "user", "parts": [{"type": "text", "content": "Hello"}]}] == json.loads(
            str(attrs["gen_ai.input.messages"])
        )
        assert [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Hello! How can I help you today?"}],
                "finish_reason": "stop",
            }
        ] == json.loads(str(attrs["gen_ai.output.messages"]))

    def test_redacted_and_truncated(self, collected: Spans) -> None:
        """The redaction hook runs first, then the length cap."""
        otel_llm.instrument(
            capture_content=True,
            content_max_length=20,
            redact=lambda text: text.replace("secret", "[REDACTED]"),
        )
        body = {**CHAT, "messages": [{"role": "user", "content": "my secret " + "x" * 50}]}
        Recorder(httpx).client().post("/api/chat", json=body)
        messages = json.loads(str(collected.one().attributes["gen_ai.input.messages"]))
        text = messages[0]["parts"][0]["content"]
        assert text.startswith("my [REDACTED] xxxxxx")
        assert text.endswith("[truncated 44 chars]")


def test_existing_provider_respected(collected: Spans) -> None:
    """With no tracer_provider given, the app's global provider gets the spans."""
    otel_llm.instrument()
    Recorder(httpx).client().post("/api/chat", json=CHAT)
    assert 1 == len(collected.llm())


def test_http_child_spans_when_asked(collected: Spans) -> None:
    """opentelemetry-instrumentation-httpx's span is a child of the GenAI span."""
    otel_llm.instrument(http_spans=True)
    try:
        transport = httpx.MockTransport(Recorder(httpx))
        # The contrib instrumentor wraps real transports; wrap this one by hand the same way.
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        client = httpx.Client(transport=transport, base_url="http://127.0.0.1:11434")
        HTTPXClientInstrumentor.instrument_client(client)
        client.post("/api/chat", json=CHAT)
    finally:
        otel_llm.uninstrument()
    spans = collected.all()
    genai = collected.one()
    http = [s for s in spans if s is not genai and s.parent is not None]
    assert http and all(s.parent.span_id == genai.context.span_id for s in http)  # type: ignore[union-attr]


def test_builds_provider_from_environment(tmp_path: Any) -> None:
    """No app provider: instrument() builds one from OTEL_* (console exporter here)."""
    script = (
        "import httpx, otel_llm\n"
        "otel_llm.instrument()\n"
        "def h(r): return httpx.Response(200, json={'model':'m','done':True,"
        "'prompt_eval_count':1,'eval_count':2})\n"
        "httpx.Client(transport=httpx.MockTransport(h)).post("
        "'http://127.0.0.1:11434/api/generate', json={'model':'m','prompt':'p','stream':False})\n"
    )
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "svc-under-test",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert 0 == out.returncode, out.stderr
    assert '"name": "text_completion m"' in out.stdout
    assert '"service.name": "svc-under-test"' in out.stdout


def test_tracer_provider_argument_wins(collected: Spans) -> None:
    """An explicit tracer_provider gets the spans instead of the global one."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_llm.instrument(tracer_provider=provider)
    Recorder(httpx2).client().post("/api/chat", json=CHAT)
    assert 1 == len(exporter.get_finished_spans())
    assert [] == collected.llm()


def test_opentelemetry_instrument_loads_us(tmp_path: Any) -> None:
    """`opentelemetry-instrument python app.py` finds the entry point and traces the call."""
    import shutil

    app = tmp_path / "app.py"
    app.write_text(
        "import httpx\n"
        "def h(r): return httpx.Response(200, json={'model':'m','done':True,"
        "'prompt_eval_count':1,'eval_count':2})\n"
        "httpx.Client(transport=httpx.MockTransport(h)).post("
        "'http://127.0.0.1:11434/api/generate', json={'model':'m','prompt':'p','stream':False})\n"
    )
    launcher = shutil.which(
        "opentelemetry-instrument", path=str(__import__("pathlib").Path(sys.executable).parent)
    )
    assert launcher is not None
    env = {
        "PATH": "/usr/bin:/bin",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx",
    }
    out = subprocess.run(
        [launcher, sys.executable, str(app)], capture_output=True, text=True, env=env, timeout=120
    )
    assert 0 == out.returncode, out.stderr
    assert '"name": "text_completion m"' in out.stdout
    assert '"gen_ai.usage.output_tokens": 2' in out.stdout


def test_injected_headers_equal_the_propagators(spans: Spans) -> None:
    """The direct traceparent/tracestate write gives exactly what propagate.inject gives."""
    from opentelemetry import context, propagate
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    parent = SpanContext(
        trace_id=0x1234,
        span_id=0x5678,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1")]),
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        recorder = Recorder(httpx)
        recorder.client().post("/api/chat", json=CHAT)
    finally:
        context.detach(token)
    span = spans.one()
    expected: dict[str, str] = {}
    propagate.inject(expected, context=trace.set_span_in_context(NonRecordingSpan(span.context)))
    sent = recorder.requests[0].headers
    assert expected == {k: sent[k] for k in expected}
    assert {"traceparent", "tracestate"} == set(expected)


def test_otlp_json_file_exporter_by_name(tmp_path: Any) -> None:
    """traces_exporter="otlp_json_file" writes OTLP JSON lines that `otel-llm check` reads."""
    script = (
        "import httpx, otel_llm\n"
        "otel_llm.instrument(traces_exporter='otlp_json_file')\n"
        "def h(r): return httpx.Response(200, json={'model':'m','done':True,"
        "'prompt_eval_count':1,'eval_count':2})\n"
        "httpx.Client(transport=httpx.MockTransport(h)).post("
        "'http://127.0.0.1:11434/api/generate', json={'model':'m','prompt':'p','stream':False})\n"
    )
    traces = tmp_path / "traces.jsonl"
    env = {
        "OTEL_LLM_TRACES_FILE": str(traces),
        "OTEL_METRICS_EXPORTER": "none",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert 0 == out.returncode, out.stderr
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "checks:\n  - name: one ok completion\n    calls: {operation: text_completion}\n"
        "    expect: {count: 1, status: ok, output_tokens: 2}\n"
    )
    from otel_llm.check import main as check

    assert 0 == check(["--spec", str(spec), str(traces)])


# -- twins: the sync and async halves take the same arguments ----------------------------

_ASYNC_NAME = {"__iter__": "__aiter__", "__next__": "__anext__"}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    import inspect

    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(fn, follow_wrapped=False).parameters.values()
    ]


@pytest.mark.parametrize("module", MODULES)
def test_send_wrappers_are_twins(module: Any) -> None:
    """The sync and async ``send`` wrappers (and their builders) take the same parameters,
    and each keeps its original's name and signature for introspection."""
    import inspect

    from otel_llm import _observe, _patch

    sync_observer, async_observer = _observe.make_observers(
        module.SyncByteStream, module.AsyncByteStream
    )
    original = getattr(module.Client.send, "__otel_llm_original__", module.Client.send)
    aoriginal = getattr(module.AsyncClient.send, "__otel_llm_original__", module.AsyncClient.send)
    send = _patch._wrap_send(original, sync_observer)
    asend = _patch._wrap_asend(aoriginal, async_observer)
    assert _params(_patch._wrap_send) == _params(_patch._wrap_asend)
    assert _params(send) == _params(asend)
    assert inspect.signature(send) == inspect.signature(original)
    assert inspect.signature(asend) == inspect.signature(aoriginal)
    assert (False, True) == (
        inspect.iscoroutinefunction(send),
        inspect.iscoroutinefunction(asend),
    )


def test_observers_are_twins() -> None:
    """Every method of the sync observer has an async twin with the same parameters
    (``close`` ↔ ``aclose``, ``__iter__`` ↔ ``__aiter__``), and the other way round."""
    import inspect

    from otel_llm import _observe

    sync_cls, async_cls = _observe.make_observers(httpx.SyncByteStream, httpx.AsyncByteStream)
    sync_own, async_own = sync_cls.__mro__[1], async_cls.__mro__[1]

    def methods(cls: type) -> dict[str, Any]:
        return {
            name: fn
            for name, fn in vars(cls).items()
            if inspect.isfunction(fn)
            and (not name.startswith("_") or name in {*_ASYNC_NAME, *_ASYNC_NAME.values()})
        }

    sync_methods, async_methods = methods(sync_own), methods(async_own)
    twins = {_ASYNC_NAME.get(name, "a" + name): name for name in sync_methods}
    assert sorted(twins) == sorted(async_methods)
    for aname, name in twins.items():
        afn, fn = async_methods[aname], sync_methods[name]
        assert (name, _params(fn)) == (name, _params(afn))
        assert not (inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn))
        assert inspect.iscoroutinefunction(afn) or inspect.isasyncgenfunction(afn)
    assert _params(sync_cls.__init__) == _params(async_cls.__init__)
