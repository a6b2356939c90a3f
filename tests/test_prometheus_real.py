"""A real Prometheus scrapes the direct endpoint of an instrumented process: PromQL and exemplars.

The instrumented process is a subprocess (its ``/metrics`` is a real socket, served
the way an app would serve it) calling the mock Ollama in this process. Prometheus
(Debian's ``prometheus`` package) runs from a temp dir with a 1 s scrape interval and
exemplar storage; every process started here is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import require

pytestmark = pytest.mark.real_component

FAST, STREAMED, V1 = 6, 4, 2  # calls the instrumented process makes of each kind

# The instrumented app: spans go to a JSON-lines file, metrics to its own /metrics.
APP = r"""
import json, os, sys, time
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_llm

work = Path(sys.argv[1])
base = sys.argv[2]


class FileExporter(SpanExporter):
    def export(self, spans):
        with open(work / "spans.jsonl", "a") as out:
            for span in spans:
                ctx = span.get_span_context()
                out.write(json.dumps({
                    "name": span.name,
                    "trace_id": format(ctx.trace_id, "032x"),
                    "span_id": format(ctx.span_id, "016x"),
                    "attributes": {k: v for k, v in span.attributes.items()
                                   if isinstance(v, (int, float, str, bool))},
                }) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
otel_llm.instrument(tracer_provider=provider)  # OTEL_METRICS_EXPORTER=prometheus: our endpoint
(work / "ready").touch()
while not (work / "go").exists():
    time.sleep(0.05)
chat = {"messages": [{"role": "user", "content": "Why is the sky blue?"}]}
with httpx.Client(base_url=base, timeout=30) as client:
    for i in range(int(os.environ["FAST"])):
        client.post("/api/chat", json={**chat, "model": "llama3.2", "stream": False})
        time.sleep(0.25)
    for i in range(int(os.environ["STREAMED"])):
        with client.stream("POST", "/api/chat", json={**chat, "model": "qwen3:8b"}) as r:
            for _ in r.iter_lines():
                pass
        time.sleep(0.25)
    for i in range(int(os.environ["V1"])):
        body = {**chat, "model": "llama3.2", "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            for _ in r.iter_lines():
                pass
(work / "done").touch()
while True:
    time.sleep(1)
"""

CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: direct
    honor_labels: true  # as deploy/prometheus.yml: the exposed job (service name) is kept
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class PromQL:
    """Prometheus's HTTP API, as the assertions read it."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def vector(self, query: str) -> dict[str, float]:
        """``{label-set repr: value}`` of an instant query."""
        response = httpx.get(f"{self.base}/api/v1/query", params={"query": query}, timeout=5)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}

    def scalar(self, query: str) -> float | None:
        values = list(self.vector(query).values())
        assert len(values) <= 1, values
        return values[0] if values else None

    def exemplars(self, query: str, since: float) -> list[dict[str, Any]]:
        params = {"query": query, "start": str(since), "end": str(time.time() + 1)}
        response = httpx.get(f"{self.base}/api/v1/query_exemplars", params=params, timeout=5)
        response.raise_for_status()
        return [e for series in response.json()["data"] for e in series["exemplars"]]


def launch_app(
    work: Any, mock_url: str, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Start ``work/app.py`` (instrumented, serving /metrics) and wait until it says ready."""
    with open(work / "app.log", "wb") as log:
        app = subprocess.Popen(
            [sys.executable, str(work / "app.py"), str(work), mock_url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    processes.append(app)
    wait_for("the app", lambda: (work / "ready").exists() or app.poll() is not None)
    assert app.poll() is None, (work / "app.log").read_text()
    return app


def launch_prometheus(
    binary: str, work: Any, port: int, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """A real Prometheus on 127.0.0.1:port with exemplar storage, data in ``work``."""
    with open(work / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
            ],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    processes.append(prom)
    return prom


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PromQL, list[dict[str, Any]], float]]:
    """Prometheus that has scraped every call of the instrumented subprocess; its spans."""
    prometheus = require("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    metrics_port, prometheus_port = free_port(), free_port()
    (work / "prometheus.yml").write_text(CONFIG.format(port=metrics_port))
    (work / "app.py").write_text(APP)
    started = time.time()
    processes: list[subprocess.Popen[bytes]] = []
    scenarios = {
        "llama3.2": Scenario(ttft=0.1, load_duration_ns=1_000_000),
        "qwen3:8b": Scenario(ttft=0.025, chunk_delay=0.005, load_duration_ns=1_000_000),
    }
    with MockOllama(scenarios) as mock:
        try:
            env = {
                **os.environ,
                "OTEL_METRICS_EXPORTER": "prometheus",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_SERVICE_NAME": "llm-app",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
                "FAST": str(FAST),
                "STREAMED": str(STREAMED),
                "V1": str(V1),
            }
            app = launch_app(work, mock.url, env, processes)
            launch_prometheus(prometheus, work, prometheus_port, processes)
            api = PromQL(prometheus_port)
            wait_for("a first scrape", lambda: api.scalar('up{job="direct"}') == 1.0)
            (work / "go").touch()
            wait_for("the calls", lambda: (work / "done").exists() or app.poll() is not None)
            assert app.poll() is None, (work / "app.log").read_text()
            calls = FAST + STREAMED + V1
            query = "sum(gen_ai_client_operation_duration_seconds_count)"
            wait_for("every call scraped", lambda: api.scalar(query) == calls)
            time.sleep(2.5)  # two more scrapes: rate() over a window that saw every call
            spans = [json.loads(line) for line in (work / "spans.jsonl").read_text().splitlines()]
            yield api, spans, started
        finally:
            for process in reversed(processes):
                stop(process)


class TestRealPrometheus:
    def test_rate(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """rate() of the duration count per model is positive for both models called."""
        api, _, _ = scraped
        rates = api.vector(
            "sum by (gen_ai_request_model) "
            "(rate(gen_ai_client_operation_duration_seconds_count[1m]))"
        )
        assert {"llama3.2", "qwen3:8b"} == {json.loads(k)["gen_ai_request_model"] for k in rates}
        assert all(v > 0 for v in rates.values()), rates

    def test_counts_per_model(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """The duration histogram counts every call, by model and operation."""
        api, _, _ = scraped
        counts = api.vector(
            "sum by (gen_ai_request_model) (gen_ai_client_operation_duration_seconds_count)"
        )
        actual = {json.loads(k)["gen_ai_request_model"]: v for k, v in counts.items()}
        assert {"llama3.2": FAST + V1, "qwen3:8b": STREAMED} == actual

    def test_histogram_quantile(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """Medians land in the buckets of the scripted latencies (100 ms, 25 ms to first byte)."""
        api, _, _ = scraped
        median = api.scalar(
            "histogram_quantile(0.5, sum by (le) (rate(gen_ai_client_operation_duration_seconds"
            '_bucket{gen_ai_request_model="llama3.2",gen_ai_provider_name="ollama"}[1m])))'
        )
        assert median is not None and 0.08 <= median <= 0.16, median
        ttft = api.scalar(
            "histogram_quantile(0.5, sum by (le) "
            "(rate(gen_ai_client_operation_time_to_first_chunk_seconds_bucket"
            '{gen_ai_request_model="qwen3:8b"}[1m])))'
        )
        assert ttft is not None and 0.02 <= ttft <= 0.06, ttft

    def test_token_sums(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """Token usage sums equal the spans' token attributes; usage-less streams add none."""
        api, spans, _ = scraped
        sums = api.vector("sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum)")
        actual = {json.loads(k)["gen_ai_token_type"]: v for k, v in sums.items()}
        expected = {
            kind: float(sum(s["attributes"].get(f"gen_ai.usage.{kind}_tokens", 0) for s in spans))
            for kind in ("input", "output")
        }
        assert expected == actual
        counts = api.scalar('sum(gen_ai_client_token_usage_count{gen_ai_token_type="input"})')
        assert FAST + STREAMED == counts

    def test_server_metrics(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """Ollama's own timings arrive as gen_ai.server.* histograms for native calls."""
        api, _, _ = scraped
        count = api.scalar("sum(gen_ai_server_time_per_output_token_seconds_count)")
        assert FAST + STREAMED == count

    def test_exemplars(self, scraped: tuple[PromQL, list[dict[str, Any]], float]) -> None:
        """Stored exemplars of duration and TTFT name the trace and span of real calls."""
        api, spans, started = scraped
        known = {(s["trace_id"], s["span_id"]) for s in spans}
        for metric in (
            "gen_ai_client_operation_duration_seconds_bucket",
            "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        ):
            exemplars = api.exemplars(metric, started)
            pairs = {(e["labels"]["trace_id"], e["labels"]["span_id"]) for e in exemplars}
            assert pairs, metric
            assert pairs <= known, (metric, pairs - known)

    def test_scope_job_and_resource_labels(
        self, scraped: tuple[PromQL, list[dict[str, Any]], float]
    ) -> None:
        """Series carry the Collector's scope labels, job and dashboard resource labels."""
        api, _, _ = scraped
        series = api.vector("gen_ai_client_operation_duration_seconds_count")
        labels = json.loads(next(iter(series)))
        assert ("otel_llm", "llm-app", "llm-app", "test") == (
            labels["otel_scope_name"],
            labels["job"],
            labels["service_name"],
            labels["deployment_environment_name"],
        )
