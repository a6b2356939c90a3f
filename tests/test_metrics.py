"""GenAI metrics: names, units, buckets, attributes, exemplars, the model cap, both export paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import otel_llm
from otel_llm import _residency as residency
from otel_llm import instruments, metrics, prometheus
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans

MODELS = ("llama3.2", "qwen3:8b", "all-minilm", "m1", "m2", "m3")
COLD_NS = 2_000_000_000
WARM_NS = 1_000_000
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

CLASSIC_NAMES = {
    "gen_ai.client.operation.duration",
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.client.operation.time_per_output_chunk",
    "gen_ai.server.request.duration",
    "gen_ai.server.time_to_first_token",
    "gen_ai.server.time_per_output_token",
    "ollama.model.load.duration",
}

# The names the OpenTelemetry Collector's `prometheus` exporter gives our metrics
# (default translation_strategy UnderscoreEscapingWithSuffixes); docs/metrics.md.
PROMETHEUS_NAMES = {
    "gen_ai.client.operation.duration": "gen_ai_client_operation_duration_seconds",
    "gen_ai.client.token.usage": "gen_ai_client_token_usage",
    "gen_ai.client.operation.time_to_first_chunk": (
        "gen_ai_client_operation_time_to_first_chunk_seconds"
    ),
    "gen_ai.client.operation.time_per_output_chunk": (
        "gen_ai_client_operation_time_per_output_chunk_seconds"
    ),
    "gen_ai.client.inference.duration": "gen_ai_client_inference_duration_seconds",
    "gen_ai.client.inference.time_to_first_chunk": (
        "gen_ai_client_inference_time_to_first_chunk_seconds"
    ),
    "gen_ai.client.inference.time_per_output_chunk": (
        "gen_ai_client_inference_time_per_output_chunk_seconds"
    ),
    "gen_ai.client.inference.usage.input_tokens": (
        "gen_ai_client_inference_usage_input_tokens_total"
    ),
    "gen_ai.client.inference.usage.output_tokens": (
        "gen_ai_client_inference_usage_output_tokens_total"
    ),
    "gen_ai.client.inference.usage.cache_read.input_tokens": (
        "gen_ai_client_inference_usage_cache_read_input_tokens_total"
    ),
    "gen_ai.client.inference.operation.input_tokens": (
        "gen_ai_client_inference_operation_input_tokens"
    ),
    "gen_ai.client.inference.operation.output_tokens": (
        "gen_ai_client_inference_operation_output_tokens"
    ),
    "gen_ai.client.embeddings.duration": "gen_ai_client_embeddings_duration_seconds",
    "gen_ai.client.embeddings.operation.input_tokens": (
        "gen_ai_client_embeddings_operation_input_tokens"
    ),
    "gen_ai.server.request.duration": "gen_ai_server_request_duration_seconds",
    "gen_ai.server.time_to_first_token": "gen_ai_server_time_to_first_token_seconds",
    "gen_ai.server.time_per_output_token": "gen_ai_server_time_per_output_token_seconds",
    "ollama.model.load.duration": "ollama_model_load_duration_seconds",
    "ollama.models.loaded": "ollama_models_loaded",
    "ollama.model.size": "ollama_model_size_bytes",
    "ollama.model.vram.size": "ollama_model_vram_size_bytes",
    "ollama.model.time_to_unload": "ollama_model_time_to_unload_seconds",
    "ollama.context.truncations": "ollama_context_truncations_total",
    "ollama.context.utilization": "ollama_context_utilization",
    "ollama.request.wait.duration": "ollama_request_wait_duration_seconds",
    "ollama.model.operation.duration": "ollama_model_operation_duration_seconds",
    "ollama.model.pulled": "ollama_model_pulled_bytes_total",
    "otel_llm.exporter.span.dropped": "otel_llm_exporter_span_dropped_total",
    "otel_llm.exporter.metric_data_point.dropped": (
        "otel_llm_exporter_metric_data_point_dropped_total"
    ),
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(models=MODELS) as server:
        yield server


@pytest.fixture
def scenario(mock: MockOllama) -> Iterator[Scenario]:
    """The default scenario of the shared mock, reset after the test."""
    mock.default = Scenario(load_duration_ns=WARM_NS)
    mock.scenarios.clear()
    try:
        yield mock.default
    finally:
        mock.default = Scenario(load_duration_ns=WARM_NS)
        mock.scenarios.clear()


class Captured:
    """One instrumented run: in-memory metrics and the LLM spans."""

    def __init__(self, reader: InMemoryMetricReader, spans: Spans) -> None:
        self.reader = reader
        self.spans = spans

    def metrics(self) -> dict[str, Metric]:
        """Collect now (cumulative data; exemplars since the previous collection)."""
        data = self.reader.get_metrics_data()
        out: dict[str, Metric] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    out[metric.name] = metric
        return out

    def points(self, name: str) -> list[Any]:
        metric = self.metrics().get(name)
        return list(metric.data.data_points) if metric is not None else []

    def one(self, name: str) -> HistogramDataPoint:
        points = self.points(name)
        assert 1 == len(points), points
        point = points[0]
        assert isinstance(point, HistogramDataPoint)
        return point

    def llm_spans(self) -> list[ReadableSpan]:
        return self.spans.llm()


@pytest.fixture
def capture(
    collected: Spans, tracer_provider: TracerProvider, scenario: Scenario
) -> Iterator[Callable[..., Captured]]:
    """``capture(**options)`` instruments with a fresh MeterProvider and in-memory reader."""

    def start(**options: Any) -> Captured:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        otel_llm.instrument(tracer_provider=tracer_provider, meter_provider=provider, **options)
        return Captured(reader, collected)

    yield start
    otel_llm.uninstrument()


def chat(mock: MockOllama, stream: bool = False, model: str = "llama3.2") -> None:
    body = {**CHAT, "model": model, "stream": stream}
    with httpx.Client(base_url=mock.url) as client:
        if stream:
            with client.stream("POST", "/api/chat", json=body) as response:
                for _ in response.iter_lines():
                    pass
        else:
            client.post("/api/chat", json=body)


def v1_stream(mock: MockOllama, include_usage: bool) -> None:
    body: dict[str, Any] = {**CHAT, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with (
        httpx.Client(base_url=mock.url) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        for _ in response.iter_lines():
            pass


def embed(mock: MockOllama) -> None:
    with httpx.Client(base_url=mock.url) as client:
        client.post("/api/embed", json={"model": "all-minilm", "input": ["one two", "three"]})


def base_attributes(mock: MockOllama, model: str = "llama3.2", op: str = "chat") -> dict[str, Any]:
    return {
        "gen_ai.operation.name": op,
        "gen_ai.provider.name": "ollama",
        "server.address": "127.0.0.1",
        "server.port": mock.port,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
    }


class TestInstruments:
    def test_every_classic_instrument(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """A cold non-streaming chat and a stream record all eight classic instruments."""
        scenario.load_duration_ns = COLD_NS
        run = capture()
        chat(mock)
        chat(mock, stream=True)
        # Plus the wait outside Ollama; context utilisation appears only once the model's
        # window has been learned in the background (tests/test_insight.py covers it).
        recorded = set(run.metrics()) - {"ollama.context.utilization"}
        assert CLASSIC_NAMES | {"ollama.request.wait.duration"} == recorded

    def test_units_and_buckets(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """Each recorded instrument has its spec's unit and bucket boundaries."""
        scenario.load_duration_ns = COLD_NS
        run = capture()
        chat(mock, stream=True)
        specs = {spec.name: spec for spec in instruments.ALL}
        for name, metric in run.metrics().items():
            spec = specs[name]
            assert (name, spec.unit) == (name, metric.unit)
            for point in metric.data.data_points:
                assert spec.buckets == tuple(point.explicit_bounds)

    def test_local_model_buckets(self) -> None:
        """Durations reach cold-load minutes; time to first token starts at 1 ms."""
        assert (81.92, 163.84, 327.68) == instruments.DURATION_BUCKETS[-3:]
        assert 0.001 == instruments.TTFT_BUCKETS[0]
        assert instruments.TTFT_BUCKETS[-1] >= 300

    def test_attributes(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """Duration carries operation, provider, models, server address and port; nothing else."""
        run = capture()
        chat(mock)
        assert base_attributes(mock) == dict(
            run.one("gen_ai.client.operation.duration").attributes or {}
        )

    def test_token_type(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """Token usage has one point per token type, with the duration's attributes."""
        run = capture()
        chat(mock)
        actual = sorted(
            dict(p.attributes)["gen_ai.token.type"] for p in run.points("gen_ai.client.token.usage")
        )
        assert ["input", "output"] == actual

    def test_error_type(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """A failed call adds error.type to its duration and records no token usage."""
        scenario.status = 500
        run = capture()
        chat(mock)
        expected = {**base_attributes(mock), "error.type": "500"}
        expected.pop("gen_ai.response.model")
        assert expected == dict(run.one("gen_ai.client.operation.duration").attributes or {})
        assert [] == run.points("gen_ai.client.token.usage")

    def test_token_sums_equal_spans(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """Token usage sums equal the sums of the spans' usage attributes."""
        run = capture()
        chat(mock)
        chat(mock, stream=True)
        v1_stream(mock, include_usage=True)
        embed(mock)
        spans = run.llm_spans()
        assert 4 == len(spans)
        for kind in ("input", "output"):
            from_spans = sum(int(s.attributes.get(f"gen_ai.usage.{kind}_tokens", 0)) for s in spans)  # type: ignore[union-attr,arg-type]
            from_metric = sum(
                p.sum
                for p in run.points("gen_ai.client.token.usage")
                if dict(p.attributes)["gen_ai.token.type"] == kind
            )
            assert (kind, from_spans) == (kind, from_metric)

    def test_usage_missing_records_no_tokens(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """A /v1 stream without usage records its duration but no token usage (never a 0)."""
        run = capture()
        v1_stream(mock, include_usage=False)
        assert True is run.spans.one().attributes["otel_llm.usage.missing"]  # type: ignore[index]
        assert 1 == run.one("gen_ai.client.operation.duration").count
        assert [] == run.points("gen_ai.client.token.usage")

    def test_stream_metrics_only_for_streams(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """A non-streaming call records no time to first chunk and no time per chunk."""
        run = capture()
        chat(mock)
        assert [] == run.points("gen_ai.client.operation.time_to_first_chunk")
        assert [] == run.points("gen_ai.client.operation.time_per_output_chunk")

    def test_time_per_output_chunk_is_one_mean(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """A stream records one value: the mean gap between chunks after the first."""
        scenario.chunk_delay = 0.02
        scenario.chunks = 6
        run = capture()
        chat(mock, stream=True)
        point = run.one("gen_ai.client.operation.time_per_output_chunk")
        assert 1 == point.count
        assert 0.015 < point.sum < 0.06
        ttfc = run.one("gen_ai.client.operation.time_to_first_chunk")
        span_ttfc = run.spans.one().attributes["gen_ai.response.time_to_first_chunk"]  # type: ignore[index]
        assert pytest.approx(span_ttfc, abs=1e-6) == ttfc.sum

    def test_server_metrics_from_ollama_timings(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """gen_ai.server.* equal Ollama's total, load+prompt_eval and eval/eval_count."""
        run = capture()
        chat(mock)
        attrs = run.spans.one().attributes or {}
        total, load = attrs["ollama.total_duration"], attrs["ollama.load_duration"]
        prefill, decode = attrs["ollama.prompt_eval_duration"], attrs["ollama.eval_duration"]
        output = attrs["gen_ai.usage.output_tokens"]
        assert pytest.approx(total) == run.one("gen_ai.server.request.duration").sum
        assert pytest.approx(load + prefill) == run.one("gen_ai.server.time_to_first_token").sum  # type: ignore[operator]
        assert pytest.approx(decode / output) == run.one("gen_ai.server.time_per_output_token").sum  # type: ignore[operator]

    def test_load_duration_only_for_cold_loads(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """ollama.model.load.duration counts the calls that loaded the model, not warm ones."""
        run = capture()
        chat(mock)
        assert [] == run.points("ollama.model.load.duration")
        scenario.load_duration_ns = COLD_NS
        chat(mock)
        point = run.one("ollama.model.load.duration")
        assert (1, 2.0) == (point.count, point.sum)

    def test_embeddings(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """Embeddings share the duration metric, told apart by the operation name."""
        run = capture()
        embed(mock)
        point = run.one("gen_ai.client.operation.duration")
        assert base_attributes(mock, "all-minilm", "embeddings") == dict(point.attributes or {})

    def test_async_client(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """An AsyncClient call records like a sync one."""
        run = capture()

        async def call() -> None:
            async with httpx.AsyncClient(base_url=mock.url) as client:
                await client.post("/api/chat", json={**CHAT, "stream": False})

        asyncio.run(call())
        assert 1 == run.one("gen_ai.client.operation.duration").count

    def test_not_llm_calls(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """Model management requests record nothing."""
        run = capture()
        with httpx.Client(base_url=mock.url) as client:
            client.get("/api/tags")
            client.get("/api/ps")
        assert {} == run.metrics()

    def test_metrics_off(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """metrics=False keeps the spans and records no metric."""
        run = capture(metrics=False)
        chat(mock)
        assert (1, {}) == (len(run.llm_spans()), run.metrics())


class TestExemplars:
    def test_duration_and_ttft_exemplars(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """Duration and time-to-first-chunk exemplars carry the call's trace and span id."""
        run = capture()
        chat(mock, stream=True)
        ctx = run.spans.one().get_span_context()
        assert ctx is not None
        got = run.metrics()  # one collection: the SDK hands each exemplar out once
        for name in (
            "gen_ai.client.operation.duration",
            "gen_ai.client.operation.time_to_first_chunk",
            "gen_ai.server.time_to_first_token",
        ):
            (point,) = got[name].data.data_points
            actual = [(e.trace_id, e.span_id) for e in point.exemplars]  # type: ignore[union-attr]
            assert (name, [(ctx.trace_id, ctx.span_id)]) == (name, actual)

    def test_each_call_its_own_exemplar(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """Two calls landing in different buckets keep one exemplar each, of their own trace."""
        run = capture()
        chat(mock)
        mock.default = Scenario(load_duration_ns=WARM_NS, ttft=0.05)
        chat(mock)
        traces = {s.get_span_context().trace_id for s in run.llm_spans()}  # type: ignore[union-attr]
        exemplars = run.one("gen_ai.client.operation.duration").exemplars
        assert traces == {e.trace_id for e in exemplars}


class TestModelCap:
    def test_overflow(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """Past max_models distinct models, the model attributes read _OTHER."""
        run = capture(max_models=2)
        for model in ("llama3.2", "qwen3:8b", "m1", "m2", "llama3.2"):
            chat(mock, model=model)
        models = {
            (
                dict(p.attributes)["gen_ai.request.model"],
                dict(p.attributes)["gen_ai.response.model"],
            )
            for p in run.points("gen_ai.client.operation.duration")
        }
        assert {("llama3.2", "llama3.2"), ("qwen3:8b", "qwen3:8b"), ("_OTHER", "_OTHER")} == models

    def test_from_environment(
        self, mock: MockOllama, capture: Callable[..., Captured], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_LLM_MAX_MODELS sets the cap."""
        monkeypatch.setenv("OTEL_LLM_MAX_MODELS", "1")
        run = capture()
        chat(mock, model="m1")
        chat(mock, model="m2")
        models = {
            dict(p.attributes)["gen_ai.request.model"]
            for p in run.points("gen_ai.client.operation.duration")
        }
        assert {"m1", "_OTHER"} == models

    def test_unadmitted_names_not_kept(self) -> None:
        """The cap remembers admitted names only, so its memory is bounded too."""
        cap = metrics.ModelCap(1)
        actual = [cap(f"model-{i}") for i in range(1000)]
        assert ["model-0"] + ["_OTHER"] * 999 == actual
        assert 1 == len(cap._seen)


class TestLatestMetrics:
    def test_names(
        self, mock: MockOllama, scenario: Scenario, capture: Callable[..., Captured]
    ) -> None:
        """latest_metrics=True emits the gen_ai.client.inference.* set and no classic name."""
        scenario.load_duration_ns = COLD_NS
        run = capture(latest_metrics=True)
        chat(mock, stream=True)
        embed(mock)
        expected = {
            "gen_ai.client.inference.duration",
            "gen_ai.client.inference.time_to_first_chunk",
            "gen_ai.client.inference.time_per_output_chunk",
            "gen_ai.client.inference.usage.input_tokens",
            "gen_ai.client.inference.usage.output_tokens",
            "gen_ai.client.inference.operation.input_tokens",
            "gen_ai.client.inference.operation.output_tokens",
            "gen_ai.client.embeddings.duration",
            "gen_ai.client.embeddings.operation.input_tokens",
            "gen_ai.server.request.duration",
            "gen_ai.server.time_to_first_token",
            "gen_ai.server.time_per_output_token",
            "ollama.model.load.duration",
            "ollama.request.wait.duration",
        }
        # Context utilisation appears once the model's window is learned (test_insight.py).
        assert expected == set(run.metrics()) - {"ollama.context.utilization"}

    def test_usage_counters(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """The usage counters sum the spans' tokens, with modality unknown."""
        run = capture(latest_metrics=True)
        chat(mock)
        chat(mock)
        spans = run.llm_spans()
        expected = sum(int(s.attributes["gen_ai.usage.input_tokens"]) for s in spans)  # type: ignore[index,arg-type]
        (point,) = run.points("gen_ai.client.inference.usage.input_tokens")
        assert isinstance(point, NumberDataPoint)
        assert (expected, "unknown") == (
            point.value,
            dict(point.attributes)["gen_ai.token.modality"],
        )

    def test_from_environment(
        self, mock: MockOllama, capture: Callable[..., Captured], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_LLM_LATEST_METRICS=true switches the set."""
        monkeypatch.setenv("OTEL_LLM_LATEST_METRICS", "true")
        run = capture()
        chat(mock)
        assert "gen_ai.client.inference.duration" in run.metrics()
        assert "gen_ai.client.operation.duration" not in run.metrics()


class TestPrometheusNames:
    def test_every_metric(self) -> None:
        """Every metric we define gets the Collector's Prometheus name."""
        actual = {s.name: prometheus.metric_name(s.name, s.unit, s.kind) for s in instruments.ALL}
        assert PROMETHEUS_NAMES == actual

    @pytest.mark.parametrize(
        ("name", "unit", "kind", "expected"),
        [
            ("http.server.duration", "s", "histogram", "http_server_duration_seconds"),
            ("requests.count", "1", "counter", "requests_count_total"),
            ("requests_total", "{request}", "counter", "requests_total"),
            ("memory.usage", "By", "gauge", "memory_usage_bytes"),
            ("cpu.utilization", "1", "gauge", "cpu_utilization_ratio"),
            ("net.io", "By/s", "counter", "net_io_bytes_per_second_total"),
            ("latency.seconds", "s", "histogram", "latency_seconds"),
            ("queue__depth", "{item}", "gauge", "queue_depth"),
            ("2xx.responses", "", "counter", "_2xx_responses_total"),
        ],
    )
    def test_translation_rules(self, name: str, unit: str, kind: str, expected: str) -> None:
        """Units become suffixes, annotations vanish, counters end in _total (otlptranslator)."""
        assert expected == prometheus.metric_name(name, unit, kind)

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("gen_ai.request.model", "gen_ai_request_model"),
            ("server.port", "server_port"),
            ("2fa", "key_2fa"),
            ("_private", "key_private"),
            ("__reserved", "__reserved"),
        ],
    )
    def test_label_names(self, key: str, expected: str) -> None:
        """Attribute keys become label names the way the Collector normalizes them."""
        assert expected == prometheus.label_name(key)


def scrape(port: int, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=5)


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


class TestPrometheusEndpoint:
    def test_serves_the_recorded_data(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """The endpoint's OpenMetrics histogram counts, sums and exemplars match the OTLP data."""
        run = capture(prometheus_port=0)
        chat(mock, stream=True)
        served = metrics.endpoint()
        assert served is not None
        response = scrape(served.port, OPENMETRICS)
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        family = families(response.text)["gen_ai_client_operation_duration_seconds"]
        count = [s for s in family.samples if s.name.endswith("_count")]
        assert [1.0] == [s.value for s in count]
        labels = count[0].labels
        assert "otel_llm" == labels["otel_scope_name"]
        assert ("chat", "llama3.2", str(mock.port)) == (
            labels["gen_ai_operation_name"],
            labels["gen_ai_request_model"],
            labels["server_port"],
        )
        ctx = run.spans.one().get_span_context()
        assert ctx is not None
        exemplars = [s.exemplar for s in family.samples if s.exemplar is not None]
        expected = {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
        }
        assert [expected] == [e.labels for e in exemplars]
        otlp = run.one("gen_ai.client.operation.duration")
        sums = [s.value for s in family.samples if s.name.endswith("_sum")]
        assert [pytest.approx(otlp.sum)] == sums

    def test_text_format(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """A plain scrape gets the 0.0.4 text format with the same names."""
        capture(prometheus_port=0)
        chat(mock)
        served = metrics.endpoint()
        assert served is not None
        response = scrape(served.port)
        assert response.headers["content-type"].startswith("text/plain")
        assert "gen_ai_client_token_usage_bucket{" in response.text
        assert "# TYPE gen_ai_server_request_duration_seconds histogram" in response.text

    def test_counters_end_in_total(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """Latest-set counters are exposed as counters named ..._total."""
        capture(prometheus_port=0, latest_metrics=True)
        chat(mock)
        served = metrics.endpoint()
        assert served is not None
        text = scrape(served.port).text
        assert "# TYPE gen_ai_client_inference_usage_input_tokens_total counter" in text

    def test_stopped_by_uninstrument(
        self, mock: MockOllama, capture: Callable[..., Captured]
    ) -> None:
        """uninstrument() closes the endpoint."""
        capture(prometheus_port=0)
        served = metrics.endpoint()
        assert served is not None
        otel_llm.uninstrument()
        assert metrics.endpoint() is None
        with pytest.raises(httpx.TransportError):
            scrape(served.port)

    def test_environment(
        self, mock: MockOllama, capture: Callable[..., Captured], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_METRICS_EXPORTER=prometheus serves on OTEL_EXPORTER_PROMETHEUS_HOST/PORT."""
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
        monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
        monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
        capture()
        served = metrics.endpoint()
        assert served is not None
        assert ("127.0.0.1", True) == (served.host, served.port > 0)

    def test_target_info_and_job(self) -> None:
        """A resource with service name and instance id gives job, instance and target_info."""
        from opentelemetry.sdk.resources import Resource

        reader = prometheus.PrometheusReader()
        resource = Resource.create(
            {"service.name": "chat-api", "service.namespace": "shop", "service.instance.id": "i-1"}
        )
        provider = MeterProvider(metric_readers=[reader], resource=resource)
        provider.get_meter("t").create_counter("calls", unit="{call}").add(2, {"a.b": 1})
        out = {m.name: m for m in prometheus.translate(reader.snapshot())}
        (sample,) = out["calls"].samples
        assert ("calls_total", 2.0) == (sample.name, sample.value)
        assert ("shop/chat-api", "i-1", "1") == (
            sample.labels["job"],
            sample.labels["instance"],
            sample.labels["a_b"],
        )
        (info,) = out["target_info"].samples
        assert "service_name" not in info.labels
        assert ("shop/chat-api", "i-1") == (info.labels["job"], info.labels["instance"])

    def test_resource_labels(self) -> None:
        """Dashboard resource attributes go on every series (old environment spelling too)."""
        from opentelemetry.sdk.resources import Resource

        reader = prometheus.PrometheusReader()
        resource = Resource.create({"service.name": "api", "deployment.environment": "prod"})
        provider = MeterProvider(metric_readers=[reader], resource=resource)
        provider.get_meter("t").create_counter("calls").add(1)
        data = reader.snapshot()
        (sample,) = {m.name: m for m in prometheus.translate(data)}["calls"].samples
        assert ("api", "prod") == (
            sample.labels["service_name"],
            sample.labels["deployment_environment_name"],
        )
        (bare,) = {m.name: m for m in prometheus.translate(data, ())}["calls"].samples
        assert "service_name" not in bare.labels


class TestResidency:
    def test_gauges(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """ollama_residency polls /api/ps at collection: loaded count, sizes, time to unload."""
        run = capture(ollama_residency=[mock.host])
        got = run.metrics()
        (loaded,) = got["ollama.models.loaded"].data.data_points
        assert len(MODELS) == loaded.value
        sizes = got["ollama.model.vram.size"].data.data_points
        assert len(MODELS) == len(sizes)
        assert all(p.value > 0 for p in sizes)
        unload = [p.value for p in got["ollama.model.time_to_unload"].data.data_points]
        assert all(250 < v <= 300 for v in unload), unload
        assert [] == run.llm_spans()

    def test_unreachable_server(self, capture: Callable[..., Captured]) -> None:
        """A server that does not answer gives no observations and no error."""
        run = capture(ollama_residency=["127.0.0.1:9"])
        assert "ollama.models.loaded" not in run.metrics()

    def test_callable_hosts(self, mock: MockOllama, capture: Callable[..., Captured]) -> None:
        """A callable names the servers at every poll."""
        run = capture(ollama_residency=lambda: [mock.url])
        (loaded,) = run.points("ollama.models.loaded")
        assert mock.port == dict(loaded.attributes)["server.port"]

    @pytest.mark.parametrize(
        "body",
        [None, {}, {"models": None}, {"models": [1, {"size": 3}]}, {"models": "x"}],
    )
    def test_odd_answers(self, body: Any) -> None:
        """Answers without usable models give no models."""
        assert [] == residency.parse_ps(body)

    def test_expiry_parsing(self) -> None:
        """Go's RFC 3339 with nanoseconds and an offset parses to the right instant."""
        (model,) = residency.parse_ps(
            {"models": [{"model": "a", "expires_at": "2025-01-02T03:04:05.123456789-07:00"}]}
        )
        assert 1735812245.123456 == model.expires_at


def test_server_metrics_switch(mock: MockOllama, capture: Callable[..., Captured]) -> None:
    """server_metrics=False records no gen_ai.server.* histogram; the client ones stay."""
    run = capture(server_metrics=False)
    chat(mock)
    names = set(run.metrics())
    assert "gen_ai.client.operation.duration" in names
    assert not {n for n in names if n.startswith("gen_ai.server.")}
