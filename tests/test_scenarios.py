"""Scenario files for the mock Ollama: loading, errors, and real clients against them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest

from otel_llm.testing import CaptureLLM
from otel_llm.testing.mock_ollama import (
    DEFAULT_MODELS,
    MockOllama,
    Scenario,
    ToolCall,
    load_scenarios,
    scenario_from_dict,
)

DATA = Path(__file__).parent / "data"
SCENARIOS = DATA / "scenarios.yaml"
ROOT = Path(__file__).resolve().parents[1]
ASK: Any = [{"role": "user", "content": "Tell me something"}]  # 3 prompt tokens
WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama.from_file(SCENARIOS) as server:
        yield server


@pytest.fixture
def client(mock: MockOllama) -> ollama.Client:
    return ollama.Client(host=mock.url)


@pytest.fixture
def oai(mock: MockOllama) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=f"{mock.url}/v1", api_key="ollama", max_retries=0)
    yield c
    c.close()


class TestLoading:
    def test_yaml_file(self) -> None:
        """The YAML file becomes per-model Scenarios, a default and the listed models."""
        loaded = load_scenarios(SCENARIOS)
        qwen = loaded.scenarios["qwen3:8b"]
        assert (
            "It is sunny in Tokyo.",
            "The user wants the weather.",
            [ToolCall("get_weather", {"city": "Tokyo"})],
        ) == (qwen.reply, qwen.thinking, qwen.tool_calls)
        assert (4_500_000_000, "Once upon a time", 42) == (
            loaded.scenarios["cold"].load_duration_ns,
            loaded.scenarios["chunky"].reply,
            loaded.scenarios["chunky"].prompt_tokens,
        )
        assert "The sky is blue because air scatters blue light." == loaded.default.reply
        assert [
            *DEFAULT_MODELS,
            "chunky",
            "slow",
            "cold",
            "broken",
            "down",
            "long",
        ] == loaded.models

    def test_json_equals_yaml(self, tmp_path: Path) -> None:
        """The same content as JSON loads to the same scenarios."""
        import yaml

        path = tmp_path / "scenarios.json"
        path.write_text(json.dumps(yaml.safe_load(SCENARIOS.read_text())))
        assert load_scenarios(SCENARIOS) == load_scenarios(path)

    def test_dict_and_openai_tool_shape(self) -> None:
        """A dict loads too; tool calls may use the OpenAI shape with JSON-string arguments."""
        loaded = load_scenarios(
            {
                "models": {
                    "m": {
                        "tool_calls": [
                            {"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
                        ]
                    }
                },
                "listed": ["m"],
            }
        )
        assert ([ToolCall("f", {"x": 1})], ["m"]) == (
            loaded.scenarios["m"].tool_calls,
            loaded.models,
        )

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"replay": "x"}, "unknown field(s) replay (known: reply,"),
            ({"tokens": ["Hel", "lo"]}, "would stream as ['Hello']"),
            ({"reply": "a", "tokens": ["a"]}, "give reply or tokens, not both"),
            ({"ttft": -1}, "ttft must be seconds >= 0"),
            ({"status": 200}, "status must be an HTTP error status"),
            ({"error_after": "2"}, "error_after must be an integer"),
            ({"tool_calls": [{"arguments": {}}]}, "tool_calls[0]: a tool call is {name: str"),
            ({"tool_calls": [{"name": "f", "arguments": "{"}]}, "arguments are not JSON"),
            ({"tool_calls": {"name": "f"}}, "tool_calls must be a list"),
            ({"reply": None}, "reply must be a string, got None"),
            ({"embedding_dim": 8.5}, "embedding_dim must be an integer"),
            ({"chunk_delay": True}, "chunk_delay must be seconds >= 0"),
        ],
    )
    def test_errors_name_the_problem(self, fields: dict[str, Any], message: str) -> None:
        """A bad field fails with a message naming the model and the field."""
        with pytest.raises(ValueError, match=r"models\.m") as info:
            load_scenarios({"models": {"m": fields}})
        assert message in str(info.value)

    def test_unknown_top_level_key(self, tmp_path: Path) -> None:
        """A misspelt top-level key names the file."""
        path = tmp_path / "s.yaml"
        path.write_text("model:\n  llama3.2: {reply: hi}\n")
        with pytest.raises(ValueError, match=r"s.yaml: unknown key\(s\) model \(known: models"):
            load_scenarios(path)

    def test_types_follow_the_annotations(self) -> None:
        """Nulls are read where the field is optional; seconds become floats."""
        scenario = scenario_from_dict(
            {"thinking": None, "status": None, "tool_calls": None, "ttft": 1, "load_duration": 2}
        )
        assert (None, None, [], 1.0, float, 2_000_000_000) == (
            scenario.thinking,
            scenario.status,
            scenario.tool_calls,
            scenario.ttft,
            type(scenario.ttft),
            scenario.load_duration_ns,
        )

    def test_scenario_from_dict_defaults(self) -> None:
        """An empty entry is the default Scenario."""
        assert Scenario() == scenario_from_dict(None) == scenario_from_dict({})


class TestOllamaClient:
    def test_reply(self, client: ollama.Client) -> None:
        """A model's scripted reply."""
        assert (
            "Blue light scatters more than red."
            == client.chat(model="llama3.2", messages=ASK).message.content
        )

    def test_default_scenario(self, client: ollama.Client) -> None:
        """A listed model without its own entry answers with the default."""
        reply = client.generate(model="all-minilm", prompt="hi").response
        assert "The sky is blue because air scatters blue light." == reply

    def test_thinking_and_tool_calls(self, client: ollama.Client) -> None:
        """Thinking when asked for, tool calls when tools are offered."""
        r = client.chat(model="qwen3:8b", messages=ASK, tools=[WEATHER], think=True)
        calls = [(c.function.name, dict(c.function.arguments)) for c in r.message.tool_calls or []]
        assert ("The user wants the weather.", [("get_weather", {"city": "Tokyo"})]) == (
            r.message.thinking,
            calls,
        )

    def test_tokens_and_prompt_count(self, client: ollama.Client) -> None:
        """`tokens` stream one per chunk; `prompt_tokens` overrides the count."""
        parts = list(client.chat(model="chunky", messages=ASK, stream=True))
        assert (["Once", " upon", " a", " time", ""], 42, 4) == (
            [p.message.content for p in parts],
            parts[-1].prompt_eval_count,
            parts[-1].eval_count,
        )

    def test_chunks(self, client: ollama.Client) -> None:
        """`chunks` streams exactly that many content chunks."""
        parts = list(client.generate(model="long", prompt="go", stream=True))
        assert 20 == sum(1 for p in parts if p.response)

    def test_latency(self, client: ollama.Client) -> None:
        """`ttft` delays the first byte; `chunk_delay` spaces the chunks."""
        start = time.monotonic()
        stream = client.chat(model="slow", messages=ASK, stream=True)
        first = next(iter(stream))
        ttft = time.monotonic() - start
        list(stream)
        total = time.monotonic() - start
        assert ("Slow", True, True) == (
            first.message.content,
            0.3 <= ttft < 1.5,
            total >= 0.3 + 0.05 * 2,
        )

    def test_cold_load(self, client: ollama.Client) -> None:
        """`load_duration` (seconds) is reported in nanoseconds, as Ollama does."""
        assert 4_500_000_000 == client.chat(model="cold", messages=ASK).load_duration

    def test_http_error(self, client: ollama.Client) -> None:
        """`status` answers an HTTP error with Ollama's error body."""
        with pytest.raises(ollama.ResponseError) as info:
            client.chat(model="down", messages=ASK)
        assert (503, "server overloaded") == (info.value.status_code, info.value.error)

    def test_mid_stream_error(self, client: ollama.Client) -> None:
        """`error_after` sends Ollama's error line after N chunks."""
        seen = []
        with pytest.raises(ollama.ResponseError, match="model runner crashed"):
            for part in client.chat(model="broken", messages=ASK, stream=True):
                seen.append(part.message.content)
        assert ["This", " stream"] == seen

    def test_embeddings_dimension(self, client: ollama.Client) -> None:
        """`embedding_dim` sizes the vectors."""
        assert 16 == len(client.embed(model="all-minilm", input="hello").embeddings[0])


class TestOpenAIClient:
    def test_reply(self, oai: openai.OpenAI) -> None:
        """/v1 chat answers with the model's scripted reply."""
        r = oai.chat.completions.create(model="llama3.2", messages=ASK)
        assert ("Blue light scatters more than red.", "stop") == (
            r.choices[0].message.content,
            r.choices[0].finish_reason,
        )

    def test_tool_calls(self, oai: openai.OpenAI) -> None:
        """/v1 tool calls carry JSON-string arguments and finish with tool_calls."""
        r = oai.chat.completions.create(model="qwen3:8b", messages=ASK, tools=[WEATHER])
        call = (r.choices[0].message.tool_calls or [])[0]
        assert ("get_weather", {"city": "Tokyo"}, "tool_calls") == (
            call.function.name,  # type: ignore[union-attr]
            json.loads(call.function.arguments),  # type: ignore[union-attr]
            r.choices[0].finish_reason,
        )

    def test_http_error(self, oai: openai.OpenAI) -> None:
        """A 503 scenario is an InternalServerError with the scripted message."""
        with pytest.raises(openai.InternalServerError, match="server overloaded") as info:
            oai.chat.completions.create(model="down", messages=ASK)
        assert 503 == info.value.status_code

    def test_stream_cut_without_done(self, oai: openai.OpenAI) -> None:
        """`error_after` on /v1 cuts the SSE stream: no finish_reason, no [DONE]."""
        stream = oai.chat.completions.create(model="broken", messages=ASK, stream=True)
        chunks = list(stream)
        assert (["This", " stream"], [None, None]) == (
            [c.choices[0].delta.content for c in chunks],
            [c.choices[0].finish_reason for c in chunks],
        )

    def test_latency(self, oai: openai.OpenAI) -> None:
        """`ttft` holds the response head back on /v1 too."""
        start = time.monotonic()
        oai.chat.completions.create(model="slow", messages=ASK, max_tokens=1)
        assert time.monotonic() - start >= 0.3


class TestWithInstrumentation:
    """The plugin's own fixtures, with the scenario file: what otel_llm records."""

    @pytest.mark.mock_ollama(file="data/scenarios.yaml")
    def test_cut_v1_stream_is_stream_incomplete(
        self, mock_ollama: MockOllama, llm_trace: CaptureLLM
    ) -> None:
        """A /v1 stream cut before [DONE] ends the span as stream_incomplete."""
        client = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL from the fixture
        list(client.chat.completions.create(model="broken", messages=ASK, stream=True))
        client.close()
        llm_trace.llm_calls(model="broken").one().assert_error(type="stream_incomplete")

    @pytest.mark.mock_ollama(file="data/scenarios.yaml")
    def test_native_errors_and_cold_load(
        self, mock_ollama: MockOllama, llm_trace: CaptureLLM
    ) -> None:
        """Mid-stream error line, HTTP error and a cold load, as otel_llm records them."""
        client = ollama.Client()  # OLLAMA_HOST from the fixture
        with pytest.raises(ollama.ResponseError):
            list(client.chat(model="broken", messages=ASK, stream=True))
        with pytest.raises(ollama.ResponseError):
            client.chat(model="down", messages=ASK)
        client.chat(model="cold", messages=ASK)
        llm_trace.llm_calls(model="broken").one().assert_error(type="stream_error")
        llm_trace.llm_calls(model="down").one().assert_error(type="503")
        llm_trace.llm_calls(model="cold").one().assert_ok().assert_attrs(
            {"ollama.cold_load": True, "ollama.load_duration": 4.5}
        )
        llm_trace.assert_llm_checks()


class TestCLI:
    def test_serves_a_scenario_file(self) -> None:
        """`otel-llm mock-ollama --scenario FILE` answers as the file says."""
        args = [
            sys.executable,
            "-m",
            "otel_llm.cli",
            "mock-ollama",
            "--port",
            "0",
            "--scenario",
            str(SCENARIOS),
        ]
        with subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
            try:
                assert proc.stdout is not None
                url = proc.stdout.readline().strip()
                client = ollama.Client(host=url)
                reply = client.chat(model="qwen3:8b", messages=ASK, tools=[WEATHER])
                names = [c.function.name for c in reply.message.tool_calls or []]
                tags = [m.model for m in client.list().models]
            finally:
                proc.send_signal(signal.SIGINT)
                returncode = proc.wait(timeout=10)
        assert (["get_weather"], True, 0) == (names, "chunky:latest" in tags, returncode)

    def test_bad_scenario_file(self, tmp_path: Path) -> None:
        """A bad file exits 2 with the reason on stderr, before listening."""
        path = tmp_path / "bad.yaml"
        path.write_text("models:\n  m: {ttft: soon}\n")
        args = [
            sys.executable,
            "-m",
            "otel_llm.cli",
            "mock-ollama",
            "--port",
            "0",
            "--scenario",
            str(path),
        ]
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
        message = "models.m: ttft must be seconds >= 0, got 'soon'"
        assert (2, True) == (done.returncode, message in done.stderr)
