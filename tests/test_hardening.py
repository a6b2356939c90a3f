"""Hardening: concurrency, cancellation storms, threads, a failing exporter, a soak, secrets.

Bounded in time (each test a few seconds to under a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
import ollama
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import otel_llm
from otel_llm import _guard
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans

REPLY = "one two three four five"  # 5 tokens
MESSAGES = [{"role": "user", "content": "count to five"}]  # 3 prompt tokens


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(
        {"slow": Scenario(reply=REPLY, chunks=40, chunk_delay=0.01)},
        default=Scenario(reply=REPLY),
        models=["llama3.2", "slow"],
    ) as server:
        yield server


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


class TestConcurrency:
    def test_thousand_concurrent_async_streams(self, mock: MockOllama, spans: Spans) -> None:
        """1,000 concurrent streams through one client: every span ended, tokens exact."""

        async def run() -> list[str]:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=mock.url, limits=limits, timeout=60) as client:

                async def one(i: int) -> str:
                    body = {"model": "llama3.2", "messages": MESSAGES}
                    async with client.stream("POST", "/api/chat", json=body) as response:
                        lines = [json.loads(line) async for line in response.aiter_lines()]
                    return "".join(line["message"]["content"] for line in lines)

                return await asyncio.gather(*(one(i) for i in range(1000)))

        failures_before = sum(_guard.failures.values())
        texts = asyncio.run(run())
        assert [REPLY] * 1000 == texts
        ended = spans.llm()
        assert 1000 == len(ended)
        assert {(3, 5, "final")} == {
            (
                s.attributes["gen_ai.usage.input_tokens"],
                s.attributes["gen_ai.usage.output_tokens"],
                s.attributes["otel_llm.stream.ended_by"],
            )
            for s in ended
        }
        assert failures_before == sum(_guard.failures.values())

    def test_threads_share_one_sync_client(self, mock: MockOllama, spans: Spans) -> None:
        """8 threads x 40 calls on one ollama.Client: 320 spans, each with its own trace."""
        client = ollama.Client(host=mock.url)

        def work(_: int) -> str:
            if random.random() < 0.5:
                return str(client.chat(model="llama3.2", messages=MESSAGES).message.content)
            parts = client.chat(model="llama3.2", messages=MESSAGES, stream=True)
            return "".join(str(p.message.content) for p in parts)

        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(work, range(320)))
        assert [REPLY] * 320 == texts
        ended = spans.llm()
        assert 320 == len(ended)
        assert 320 == len({s.context.trace_id for s in ended if s.context})
        assert all(s.attributes["gen_ai.usage.output_tokens"] == 5 for s in ended)

    def test_cancellation_storm(self, mock: MockOllama, spans: Spans) -> None:
        """300 streams cancelled at random points: every span ends once, none leaks."""

        async def run() -> tuple[int, int]:
            async with httpx.AsyncClient(base_url=mock.url, timeout=60) as client:

                async def one() -> None:
                    body = {"model": "slow", "messages": MESSAGES}
                    async with client.stream("POST", "/api/chat", json=body) as response:
                        async for _ in response.aiter_raw():
                            pass

                tasks = [asyncio.create_task(one()) for _ in range(300)]
                rng = random.Random(7)
                loop = asyncio.get_running_loop()
                for task in tasks:
                    if rng.random() < 0.7:  # before, during or after the stream
                        loop.call_later(rng.random() * 0.6, task.cancel)
                results = await asyncio.gather(*tasks, return_exceptions=True)
            cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
            others = [r for r in results if isinstance(r, BaseException)]
            assert len(others) == cancelled, others
            return cancelled, len(results) - cancelled

        cancelled, completed = asyncio.run(run())
        gc.collect()
        ended = spans.llm()
        assert 300 == len(ended)
        assert 300 == len({id(s) for s in ended})
        finals = sum(1 for s in ended if s.attributes.get("otel_llm.stream.ended_by") == "final")
        cut = sum(1 for s in ended if s.attributes.get("error.type") == "CancelledError")
        closed = sum(1 for s in ended if s.attributes.get("otel_llm.stream.ended_by") == "close")
        # A task cancelled after its final record keeps its (final) span.
        assert completed <= finals
        assert cancelled >= 100
        assert 300 == finals + cut + closed


class _Hanging(SpanExporter):
    """An exporter stuck on the network."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(30)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


def _refused_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/traces"


class TestExporterDown:
    def _calls(self, provider: TracerProvider, mock: MockOllama, n: int) -> float:
        otel_llm.uninstrument()
        otel_llm.instrument(tracer_provider=provider)
        client = ollama.Client(host=mock.url)
        start = time.perf_counter()
        for _ in range(n):
            client.chat(model="llama3.2", messages=MESSAGES)
        took = time.perf_counter() - start
        otel_llm.uninstrument()
        return took

    def test_refusing_and_hanging_exporters_never_block_calls(
        self, mock: MockOllama, collected: Spans, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Refused or hung exports stay on the batch thread; calls finish; drops are counted."""
        # The SDK counts its drops (otel.sdk.processor.span.processed) when asked to.
        monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        working = TracerProvider()
        working.add_span_processor(SimpleSpanProcessor(_Counting()))

        refused = TracerProvider()
        refused.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=_refused_endpoint(), timeout=1))
        )

        hanging_exporter = _Hanging()
        reader = InMemoryMetricReader()
        hanging = TracerProvider()
        hanging.add_span_processor(
            BatchSpanProcessor(
                hanging_exporter,
                max_queue_size=64,
                max_export_batch_size=16,
                schedule_delay_millis=10,
                meter_provider=MeterProvider(metric_readers=[reader]),
            )
        )
        rss_before = rss_kb()
        try:
            base = min(self._calls(working, mock, 150) for _ in range(2))
            with_refused = self._calls(refused, mock, 150)
            with_hanging = self._calls(hanging, mock, 300)
        finally:
            hanging_exporter.release.set()
            refused.shutdown()
            hanging.shutdown()
        # Generous, not a speed check (make bench measures the ratio): the app is never
        # made to wait for an exporter, so these are the same order of magnitude.
        assert with_refused < base * 3 + 1
        assert with_hanging < base * 6 + 1
        assert hanging_exporter.calls >= 1
        assert rss_kb() - rss_before < 50_000
        dropped = 0
        data = reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == "otel.sdk.processor.span.processed":
                        for point in metric.data.data_points:
                            if (point.attributes or {}).get("error.type") == "queue_full":
                                dropped += int(point.value)  # type: ignore[union-attr]
        assert dropped >= 300 - 64 - 16 * 2


class _Counting(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def test_soak_memory_flat(collected: Spans) -> None:
    """100,000 calls (non-streaming and streaming mixed): RSS flat after warm-up."""
    exporter = _Counting()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_llm.instrument(tracer_provider=provider)
    final = (
        b'{"model":"m","created_at":"x","message":{"role":"assistant","content":""},'
        b'"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":5}\n'
    )
    chunk = (
        b'{"model":"m","created_at":"x","message":{"role":"assistant","content":"a"},'
        b'"done":false}\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "application/x-ndjson"}, content=iter([chunk, final])
        )

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://127.0.0.1:11434")
    body = {"model": "m", "messages": MESSAGES}
    samples = []
    for i in range(100_000):
        if i % 2:
            client.post("/api/chat", json=body)
        else:
            with client.stream("POST", "/api/chat", json=body) as response:
                for _ in response.iter_raw():
                    pass
        if i % 10_000 == 9_999:
            gc.collect()
            samples.append(rss_kb())
    assert 100_000 == exporter.count
    after_warmup = samples[1:]
    assert max(after_warmup) - min(after_warmup) < 4_000, samples


def test_no_secrets_anywhere_by_default(
    mock: MockOllama, spans: Spans, caplog: pytest.LogCaptureFixture
) -> None:
    """No content, Authorization value or API key in any span attribute, event or log."""
    secret_key = "sk-live-abcdef123456"
    prompt = "my password is hunter2"
    with caplog.at_level(logging.DEBUG):
        client = ollama.Client(host=mock.url, headers={"Authorization": f"Bearer {secret_key}"})
        client.chat(model="llama3.2", messages=[{"role": "user", "content": prompt}])
        for _ in client.generate(model="llama3.2", prompt=prompt, stream=True):
            pass
        import openai

        openai.OpenAI(base_url=mock.url + "/v1", api_key=secret_key).chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": prompt}]
        )
    dumped = json.dumps(
        [
            {
                "attributes": dict(s.attributes or {}),
                "events": [dict(e.attributes or {}) for e in s.events],
                "name": s.name,
                "status": s.status.description,
            }
            for s in spans.all()
        ],
        default=str,
    )
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert 3 == len(spans.llm())
    for secret in (secret_key, "hunter2", REPLY.split()[1]):
        assert secret not in dumped
        assert secret not in logs
