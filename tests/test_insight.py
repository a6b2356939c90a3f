"""Ollama insight end to end on the mock: context window, time outside Ollama, metric tags.

Real loopback servers only. The context window is learned in the background, so tests
that need it wait (with a deadline) until the cache holds the model, then call again.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import otel_llm
from otel_llm import _context_window
from otel_llm import semconv as sc
from otel_llm._config import Settings
from otel_llm._context_window import DEFAULT_NUM_CTX, ContextWindows
from otel_llm._types import LLMCall
from otel_llm.adapters import ollama_models
from otel_llm.adapters.ollama_models import ModelFacts, loaded_context, parse_show
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans

LONG = "word " * 100  # 100 prompt tokens on the mock


def chat(mock: MockOllama, model: str, text: str = LONG, **options: Any) -> None:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "stream": False,
    }
    if options:
        body["options"] = options
    with httpx.Client(base_url=mock.url) as client:
        client.post("/api/chat", json=body).raise_for_status()


def learn(mock: MockOllama, model: str) -> ModelFacts:
    """Wait (at most 10 s) until the background lookup of ``model`` has answered."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        facts = _context_window.windows.learned("127.0.0.1", mock.port, model)
        if facts is not None:
            return facts
        time.sleep(0.01)
    raise AssertionError(f"the context of {model} was never learned")


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture
def mock() -> Iterator[MockOllama]:
    scenarios = {
        "llama3.2": Scenario(num_ctx=64),  # the Modelfile sets a small window
        "qwen3:8b": Scenario(),  # no num_ctx: the loaded window (4096) applies
    }
    with MockOllama(scenarios) as server:
        yield server


@pytest.fixture
def reader(collected: Spans, tracer_provider: TracerProvider) -> Iterator[InMemoryMetricReader]:
    """Instrumented with an in-memory metric reader; ``metric_tags`` for ``team``, cap 2."""
    reader = InMemoryMetricReader()
    otel_llm.instrument(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        metric_tags=["team"],
        max_tag_values=2,
    )
    yield reader
    otel_llm.uninstrument()


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    out: list[Any] = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    out.extend(metric.data.data_points)
    return out


class TestContextWindow:
    def test_request_num_ctx_judges_the_first_call(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """options.num_ctx needs no lookup: a prompt of 100 tokens fills a window of 50."""
        chat(mock, "qwen3:8b", num_ctx=50)
        attrs = attributes(collected.one())
        assert (50, 50, "request", 1.0, True) == (
            attrs[sc.USAGE_INPUT_TOKENS],
            attrs[sc.OLLAMA_CONTEXT_SIZE],
            attrs[sc.OLLAMA_CONTEXT_SOURCE],
            attrs[sc.OLLAMA_CONTEXT_UTILIZATION],
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED],
        )

    def test_a_prompt_that_fits_is_not_truncated(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """100 tokens in a window of 400: a quarter used, not cut."""
        chat(mock, "qwen3:8b", num_ctx=400)
        attrs = attributes(collected.one())
        assert (0.25, False) == (
            attrs[sc.OLLAMA_CONTEXT_UTILIZATION],
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED],
        )

    def test_modelfile_window_is_learned_off_the_request_path(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """First call: no context attributes; once learned, the Modelfile's 64 judges the call."""
        chat(mock, "llama3.2")
        first = attributes(collected.one())
        assert sc.OLLAMA_CONTEXT_SIZE not in first
        assert ModelFacts(num_ctx=64, trained_context=131072, loaded_context=64) == learn(
            mock, "llama3.2"
        )
        collected.clear()
        chat(mock, "llama3.2")
        attrs = attributes(collected.one())
        assert (64, "modelfile", True) == (
            attrs[sc.OLLAMA_CONTEXT_SIZE],
            attrs[sc.OLLAMA_CONTEXT_SOURCE],
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED],
        )

    def test_openai_compatible_calls_to_ollama(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """/v1 carries no num_ctx: once learned, the Modelfile's window judges it too."""
        body = {"model": "llama3.2", "messages": [{"role": "user", "content": LONG}]}
        with httpx.Client(base_url=mock.url) as client:
            client.post("/v1/chat/completions", json=body).raise_for_status()
            learn(mock, "llama3.2")
            collected.clear()
            client.post("/v1/chat/completions", json=body).raise_for_status()
        attrs = attributes(collected.one())
        assert ("ollama", 64, 64, "modelfile", True) == (
            attrs[sc.PROVIDER_NAME],
            attrs[sc.USAGE_INPUT_TOKENS],
            attrs[sc.OLLAMA_CONTEXT_SIZE],
            attrs[sc.OLLAMA_CONTEXT_SOURCE],
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED],
        )
        assert sc.OLLAMA_WAIT_DURATION not in attrs  # /v1 reports no total_duration

    def test_loaded_window_without_a_modelfile_num_ctx(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """No num_ctx anywhere: /api/ps's context_length (the server's default) applies."""
        chat(mock, "qwen3:8b")
        learn(mock, "qwen3:8b")
        collected.clear()
        chat(mock, "qwen3:8b")
        attrs = attributes(collected.one())
        assert (DEFAULT_NUM_CTX, "loaded", False) == (
            attrs[sc.OLLAMA_CONTEXT_SIZE],
            attrs[sc.OLLAMA_CONTEXT_SOURCE],
            attrs[sc.OLLAMA_CONTEXT_TRUNCATED],
        )

    def test_the_lookup_is_no_span_and_happens_once(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """/api/show and /api/ps run suppressed (no span, no recursion), once per model."""
        chat(mock, "llama3.2")
        learn(mock, "llama3.2")
        chat(mock, "llama3.2")
        chat(mock, "llama3.2")
        assert ["chat llama3.2"] * 3 == [s.name for s in collected.all()]
        looked_up = [(r.method, r.path) for r in mock.requests if r.path != "/api/chat"]
        assert [("POST", "/api/show"), ("GET", "/api/ps")] == looked_up
        assert {"model": "llama3.2"} == next(
            r.json() for r in mock.requests if r.path == "/api/show"
        )

    def test_truncations_counted_by_model(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """Two cut prompts and one that fits: the counter says 2 for the model."""
        chat(mock, "qwen3:8b", num_ctx=50)
        chat(mock, "qwen3:8b", num_ctx=50)
        chat(mock, "qwen3:8b", num_ctx=400)
        counted = {
            p.attributes[sc.REQUEST_MODEL]: p.value
            for p in points(reader, "ollama.context.truncations")
        }
        assert {"qwen3:8b": 2} == counted
        (utilization,) = points(reader, "ollama.context.utilization")
        assert (3, 2.25) == (utilization.count, utilization.sum)  # 1 + 1 + 0.25


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(port: int, model: str) -> LLMCall:
    call = LLMCall(
        operation=sc.CHAT,
        provider="ollama",
        adapter=ollama_models.adapter,
        settings=Settings(),
        server_address="127.0.0.1",
        server_port=port,
        start_ns=0,
        request_model=model,
    )
    call.input_tokens = 5000
    return call


def _wait_learned(windows: ContextWindows, port: int, model: str) -> ModelFacts:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        facts = windows.learned("127.0.0.1", port, model)
        if facts is not None:
            return facts
        time.sleep(0.01)
    raise AssertionError("no answer")


class TestContextWindowsCache:
    def test_a_failed_lookup_falls_back_to_the_default(self) -> None:
        """Nothing listens: remembered as unknown, the default 4096 applies meanwhile."""
        windows, port = ContextWindows(), _closed_port()
        assert None is windows.window(_call(port, "m"))
        assert ModelFacts() == _wait_learned(windows, port, "m")
        window = windows.window(_call(port, "m"))
        assert window is not None
        assert (DEFAULT_NUM_CTX, "default") == (window.size, window.source)

    def test_bounded(self) -> None:
        """With room for two models, the least recently used third is forgotten."""
        windows, port = ContextWindows(max_entries=2), _closed_port()
        for model in ("a", "b"):
            windows.window(_call(port, model))
            _wait_learned(windows, port, model)
        windows.window(_call(port, "a"))  # a is now the most recently used
        windows.window(_call(port, "c"))
        _wait_learned(windows, port, "c")
        assert [True, False, True] == [
            windows.learned("127.0.0.1", port, m) is not None for m in ("a", "b", "c")
        ]

    def test_requested_window_is_capped_by_the_trained_length(self) -> None:
        """Ollama never runs a model past its trained context; neither does the judgement."""
        windows, port = ContextWindows(), _closed_port()
        call = _call(port, "m")
        windows._entries[("127.0.0.1", port, "m")] = _context_window._Entry(
            ModelFacts(trained_context=2048), float("inf")
        )
        call.num_ctx = 8192
        window = windows.window(call)
        assert window is not None
        assert (2048, "request") == (window.size, window.source)

    def test_a_slow_server_never_blocks_the_caller(self) -> None:
        """A server that accepts and never answers: window() returns while the lookup waits."""
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            port = int(server.getsockname()[1])
            windows = ContextWindows(timeout=600)
            assert None is windows.window(_call(port, "m"))
            conn, _ = server.accept()  # the lookup has connected and waits for an answer...
            with conn:
                assert None is windows.window(_call(port, "m"))  # ...and callers do not
                assert None is windows.learned("127.0.0.1", port, "m")
                # Hanging up ends the lookup: remembered as unknown (the default applies).
                conn.shutdown(socket.SHUT_RDWR)
            assert ModelFacts() == _wait_learned(windows, port, "m")


class TestProgressParser:
    def _call(self) -> LLMCall:
        call = _call(11434, "m")
        call.operation = sc.PULL
        return call

    def test_lines_split_anywhere(self) -> None:
        """Progress split mid-line, layers repeated: per-layer maxima summed, final at success."""
        body = (
            b'{"status":"pulling manifest"}\n'
            b'{"status":"pulling aa","digest":"sha256:aa","total":100}\n'
            b'{"status":"pulling aa","digest":"sha256:aa","total":100,"completed":60}\n'
            b'{"status":"pulling bb","digest":"sha256:bb","total":10,"completed":10}\n'
            b'{"status":"pulling aa","digest":"sha256:aa","total":100,"completed":100}\n'
            b'{"status":"success"}\n'
        )
        call = self._call()
        parser = ollama_models.Progress(call)
        done = [parser.feed(body[i : i + 7]) for i in range(0, len(body), 7)]
        assert [True] == [d for d in done if d]
        assert done[-1] is True
        assert ("success", 110, 110, 2, 6, None) == (
            call.op_status,
            call.op_total_bytes,
            call.op_completed_bytes,
            call.op_layers,
            call.chunks,
            call.error_type,
        )

    def test_ended_without_success(self) -> None:
        """The body ends mid-pull (a last line without newline read): stream_incomplete."""
        call = self._call()
        parser = ollama_models.Progress(call)
        parser.feed(b'{"status":"pulling manifest"}\n{"status":"pulling aa","digest":"sha256:aa"')
        parser.feed(b',"total":5,"completed":2}')
        parser.close()
        assert ("pulling aa", 5, 2, "stream_incomplete") == (
            call.op_status,
            call.op_total_bytes,
            call.op_completed_bytes,
            call.error_type,
        )


class TestShowParsing:
    def test_parameters_and_model_info(self) -> None:
        """num_ctx from the parameters text; the trained length from model_info."""
        body = {
            "parameters": 'num_ctx                        8192\nstop  "<|eot_id|>"',
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        }
        assert ModelFacts(num_ctx=8192, trained_context=131072) == parse_show(body)

    def test_nothing_said(self) -> None:
        """No parameters, no model_info, not even an object: nothing known."""
        assert [ModelFacts(), ModelFacts()] == [parse_show({}), parse_show([])]

    def test_loaded_context_matches_latest_tag(self) -> None:
        """/api/ps names llama3.2:latest; the request said llama3.2."""
        body = {"models": [{"model": "llama3.2:latest", "context_length": 8192}]}
        assert [8192, None] == [loaded_context(body, "llama3.2"), loaded_context(body, "x")]


class TestWaitOutsideOllama:
    def test_client_minus_server_time(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """A call held 0.5 s before its first byte: the wait is client time minus total_duration."""
        mock.scenarios["queued"] = Scenario(ttft=0.5)
        chat(mock, "queued", text="hi")
        span = collected.one()
        attrs = attributes(span)
        assert span.end_time is not None and span.start_time is not None
        client = (span.end_time - span.start_time) / 1e9
        total = attrs[sc.OLLAMA_TOTAL_DURATION]
        assert client - total == pytest.approx(attrs[sc.OLLAMA_WAIT_DURATION], abs=1e-6)
        assert attrs[sc.OLLAMA_WAIT_DURATION] >= 0.5 - total
        (point,) = points(reader, "ollama.request.wait.duration")
        assert (1, "queued") == (point.count, point.attributes[sc.REQUEST_MODEL])
        assert attrs[sc.OLLAMA_WAIT_DURATION] == pytest.approx(point.sum)


class TestMetricTags:
    def test_tags_label_usage_and_duration_with_a_cap(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """team= becomes an attribute of token usage and duration; a third team is _OTHER."""
        for team in ("search", "ads", "growth", "search"):
            with otel_llm.tags(team=team, agent="planner"):
                chat(mock, "qwen3:8b", text="hi")
        chat(mock, "qwen3:8b", text="hi")  # untagged
        key = "otel_llm.tag.team"
        durations = {
            p.attributes.get(key): p.count
            for p in points(reader, "gen_ai.client.operation.duration")
        }
        assert {"search": 2, "ads": 1, "_OTHER": 1, None: 1} == durations
        inputs = {
            p.attributes.get(key): p.count
            for p in points(reader, "gen_ai.client.token.usage")
            if p.attributes["gen_ai.token.type"] == "input"
        }
        assert {"search": 2, "ads": 1, "_OTHER": 1, None: 1} == inputs
        # Not an allow-listed tag: the agent stays on spans only.
        assert all(
            sc.AGENT_NAME not in p.attributes
            for p in points(reader, "gen_ai.client.operation.duration")
        )
        assert "planner" == attributes(collected.all()[0])[sc.AGENT_NAME]

    def test_off_by_default(
        self, mock: MockOllama, collected: Spans, tracer_provider: TracerProvider
    ) -> None:
        """Without metric_tags, tags stay on spans and never reach a metric."""
        reader = InMemoryMetricReader()
        otel_llm.instrument(
            tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
        )
        try:
            with otel_llm.tags(team="search"):
                chat(mock, "qwen3:8b", text="hi")
        finally:
            otel_llm.uninstrument()
        assert "search" == attributes(collected.one())["otel_llm.tag.team"]
        assert all(
            "otel_llm.tag.team" not in p.attributes
            for p in points(reader, "gen_ai.client.operation.duration")
        )

    @pytest.mark.parametrize(
        ("names", "keys"),
        [
            (["team"], ("otel_llm.tag.team",)),
            (["agent", "user_id"], ("gen_ai.agent.name", "user.id")),
            (["tenant.id", " app "], ("tenant.id", "otel_llm.tag.app")),
        ],
    )
    def test_names_become_baggage_keys(self, names: list[str], keys: tuple[str, ...]) -> None:
        """tags() names map to their baggage keys; dotted keys are taken as they are."""
        from otel_llm._config import Options, resolve

        settings = resolve(Options(metric_tags=names))
        assert keys == settings.metric_tags
        assert set(keys) <= settings.baggage_keys

    def test_environment_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OTEL_LLM_METRIC_TAGS and OTEL_LLM_MAX_TAG_VALUES when no keyword is given."""
        from otel_llm._config import resolve, resolve_metrics

        monkeypatch.setenv("OTEL_LLM_METRIC_TAGS", "team,agent")
        monkeypatch.setenv("OTEL_LLM_MAX_TAG_VALUES", "7")
        assert ("otel_llm.tag.team", "gen_ai.agent.name") == resolve().metric_tags
        assert 7 == resolve_metrics().max_tag_values
