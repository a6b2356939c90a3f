"""Model operations (pull, push, create, copy, delete, show) as spans and metrics.

Each runs against the mock Ollama on loopback, through raw httpx (sync and async) and
the ``ollama`` client: one span each, not a GenAI span, ended once, bytes unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm import semconv as sc
from otel_llm.testing.mock_ollama import MockOllama
from tests.conftest import Spans

WEIGHTS = 1_000_000_000  # the mock's weights layer is this plus 24 bits of its digest
PARAMS = 1_024


@pytest.fixture
def mock() -> Iterator[MockOllama]:
    with MockOllama() as server:
        yield server


@pytest.fixture
def reader(collected: Spans, tracer_provider: TracerProvider) -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    otel_llm.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    yield reader
    otel_llm.uninstrument()


def only(collected: Spans) -> ReadableSpan:
    """The test's one span (``Spans.one`` looks at GenAI spans only)."""
    spans = collected.all()
    assert 1 == len(spans), [s.name for s in spans]
    return spans[0]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def pull_bytes(mock: MockOllama, model: str) -> bytes:
    with (
        httpx.Client(base_url=mock.url) as client,
        client.stream("POST", "/api/pull", json={"model": model}) as response,
    ):
        return b"".join(response.iter_raw())


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


class TestPull:
    def test_streamed_pull(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """One CLIENT span "pull tinyllama": bytes and layers from the progress, success."""
        body = pull_bytes(mock, "tinyllama")
        span = only(collected)
        attrs = attributes(span)
        total = attrs[sc.OLLAMA_OPERATION_TOTAL_BYTES]
        assert ("pull tinyllama", SpanKind.CLIENT, StatusCode.UNSET) == (
            span.name,
            span.kind,
            span.status.status_code,
        )
        assert {
            sc.OLLAMA_OPERATION_NAME: "pull",
            sc.OLLAMA_OPERATION_MODEL: "tinyllama",
            sc.SERVER_ADDRESS: "127.0.0.1",
            sc.SERVER_PORT: mock.port,
            sc.HTTP_STATUS_CODE: 200,
            sc.OLLAMA_OPERATION_STATUS: "success",
            sc.OLLAMA_OPERATION_TOTAL_BYTES: total,
            sc.OLLAMA_OPERATION_COMPLETED_BYTES: total,
            sc.OLLAMA_OPERATION_LAYERS: 2,
            sc.STREAM_ENDED_BY: "final",
        } == attrs
        assert WEIGHTS + PARAMS <= total < WEIGHTS + PARAMS + (1 << 24)
        assert body.endswith(b'{"status":"success"}\n')

    def test_not_a_genai_span(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """No gen_ai.* attribute: a GenAI backend must not count a pull as an inference."""
        pull_bytes(mock, "tinyllama")
        assert [] == [k for k in attributes(only(collected)) if k.startswith("gen_ai.")]

    def test_bytes_unchanged(self, mock: MockOllama, collected: Spans) -> None:
        """The app reads the same progress bytes with and without instrumentation."""
        bare = pull_bytes(mock, "tinyllama")
        otel_llm.instrument()
        try:
            observed = pull_bytes(mock, "tinyllama")
        finally:
            otel_llm.uninstrument()
        assert bare == observed
        assert 1 == len(collected.all())

    def test_unstreamed_pull(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """stream:false answers the last status only: success, no byte counts."""
        with httpx.Client(base_url=mock.url) as client:
            client.post("/api/pull", json={"model": "tinyllama", "stream": False})
        attrs = attributes(only(collected))
        assert "success" == attrs[sc.OLLAMA_OPERATION_STATUS]
        assert sc.OLLAMA_OPERATION_TOTAL_BYTES not in attrs

    def test_error_mid_stream(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """A registry miss arrives as an error line after status 200: the span fails."""
        mock.pullable = {"llama3.2"}
        body = pull_bytes(mock, "nope")
        span = only(collected)
        attrs = attributes(span)
        assert b'{"error":"pull model manifest: file does not exist"}\n' in body
        assert (StatusCode.ERROR, "pull model manifest: file does not exist") == (
            span.status.status_code,
            span.status.description,
        )
        assert ("stream_error", "pulling manifest") == (
            attrs[sc.ERROR_TYPE],
            attrs[sc.OLLAMA_OPERATION_STATUS],
        )

    def test_closed_early_ends_once(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """The app stops reading after one line: the span ends once, at close."""
        with (
            httpx.Client(base_url=mock.url) as client,
            client.stream("POST", "/api/pull", json={"model": "tinyllama"}) as response,
        ):
            next(response.iter_lines())
        span = only(collected)
        assert ("close", "pulling manifest") == (
            attributes(span)[sc.STREAM_ENDED_BY],
            attributes(span)[sc.OLLAMA_OPERATION_STATUS],
        )

    @pytest.mark.anyio
    async def test_async_pull(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """The async twin: the same span from an AsyncClient stream."""
        async with (
            httpx.AsyncClient(base_url=mock.url) as client,
            client.stream("POST", "/api/pull", json={"model": "tinyllama"}) as response,
        ):
            async for _ in response.aiter_lines():
                pass
        attrs = attributes(only(collected))
        assert ("success", 2) == (
            attrs[sc.OLLAMA_OPERATION_STATUS],
            attrs[sc.OLLAMA_OPERATION_LAYERS],
        )

    def test_metrics(
        self, mock: MockOllama, collected: Spans, reader: InMemoryMetricReader
    ) -> None:
        """ollama.model.operation.duration for the pull; ollama.model.pulled its bytes."""
        pull_bytes(mock, "tinyllama")
        total = attributes(only(collected))[sc.OLLAMA_OPERATION_TOTAL_BYTES]
        (duration,) = points(reader, "ollama.model.operation.duration")
        (pulled,) = points(reader, "ollama.model.pulled")
        assert (1, "pull", "tinyllama") == (
            duration.count,
            duration.attributes[sc.OLLAMA_OPERATION_NAME],
            duration.attributes[sc.OLLAMA_OPERATION_MODEL],
        )
        assert total == pulled.value
        assert [] == points(reader, "gen_ai.client.operation.duration")


class TestOtherOperations:
    def test_the_ollama_client(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """ollama-python's pull, show, copy, push, create, delete: one span each, in order."""
        client = ollama.Client(host=mock.url)
        for _ in client.pull("tinyllama", stream=True):
            pass
        client.show("tinyllama")
        client.copy("tinyllama", "me/tiny")
        for _ in client.push("me/tiny", stream=True):
            pass
        client.create("tiny2", from_="tinyllama")
        client.delete("tiny2")
        spans = collected.all()
        assert [
            "pull tinyllama",
            "show tinyllama",
            "copy tinyllama",
            "push me/tiny",
            "create tiny2",
            "delete tiny2",
        ] == [s.name for s in spans]
        assert [StatusCode.UNSET] * 6 == [s.status.status_code for s in spans]
        copy, push, create = (attributes(spans[i]) for i in (2, 3, 4))
        assert "me/tiny" == copy[sc.OLLAMA_OPERATION_DESTINATION]
        assert ("success", 2) == (
            push[sc.OLLAMA_OPERATION_STATUS],
            push[sc.OLLAMA_OPERATION_LAYERS],
        )
        assert "success" == create[sc.OLLAMA_OPERATION_STATUS]
        counts = {
            p.attributes[sc.OLLAMA_OPERATION_NAME]: p.count
            for p in points(reader, "ollama.model.operation.duration")
        }
        assert {"pull": 1, "show": 1, "copy": 1, "push": 1, "create": 1, "delete": 1} == counts

    def test_unknown_model(self, mock: MockOllama, collected: Spans, reader: Any) -> None:
        """Copying or deleting a model that is not there: 404 on the span, same error."""
        with httpx.Client(base_url=mock.url) as client:
            copied = client.post("/api/copy", json={"source": "ghost", "destination": "x"})
            deleted = client.request("DELETE", "/api/delete", json={"model": "ghost"})
        assert [404, 404] == [copied.status_code, deleted.status_code]
        spans = collected.all()
        assert [("404", 'model "ghost" not found'), ("404", "model 'ghost' not found")] == [
            (attributes(s)[sc.ERROR_TYPE], s.status.description) for s in spans
        ]
