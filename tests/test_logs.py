"""Logs join traces: ids on log lines inside spans, one llm.call event per call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from structlog.testing import capture_logs

import otel_llm
from otel_llm.logs import TraceContextFilter, add_trace_context
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama() as server:
        yield server


@pytest.fixture
def instrumented(
    collected: Spans, tracer_provider: TracerProvider
) -> Iterator[tuple[Spans, TracerProvider]]:
    yield collected, tracer_provider
    otel_llm.uninstrument()


def ids(span: Any) -> dict[str, str]:
    ctx = span.get_span_context()
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


class TestAddTraceContext:
    def test_inside_span(self, tracer_provider: TracerProvider) -> None:
        """Inside a span the processor adds its ids as 32 and 16 hex digits."""
        with tracer_provider.get_tracer("t").start_as_current_span("work") as span:
            event = add_trace_context(None, "info", {"event": "hello"})
        assert {"event": "hello", **ids(span)} == event

    def test_outside_span(self) -> None:
        """Outside a span the processor adds nothing."""
        assert {"event": "hello"} == add_trace_context(None, "info", {"event": "hello"})

    def test_keeps_given_ids(self, tracer_provider: TracerProvider) -> None:
        """Ids already in the event (an llm.call event's own) are kept."""
        given = {"event": "llm.call", "trace_id": "a" * 32, "span_id": "b" * 16}
        with tracer_provider.get_tracer("t").start_as_current_span("work"):
            assert dict(given) == add_trace_context(None, "info", dict(given))

    def test_in_a_structlog_chain(self, tracer_provider: TracerProvider) -> None:
        """Configured by the app, it puts the ids on the app's own log lines."""
        seen: list[dict[str, Any]] = []

        def keep(logger: Any, method: str, event: Any) -> Any:
            seen.append(dict(event))
            raise structlog.DropEvent

        log = structlog.wrap_logger(None, processors=[add_trace_context, keep])
        with tracer_provider.get_tracer("t").start_as_current_span("work") as span:
            log.info("inside")
        log.info("outside")
        assert [{"event": "inside", **ids(span)}, {"event": "outside"}] == seen


class TestTraceContextFilter:
    def record(self) -> logging.LogRecord:
        return logging.LogRecord("app", logging.INFO, __file__, 1, "msg", None, None)

    def test_inside_span(self, tracer_provider: TracerProvider) -> None:
        """Inside a span the filter sets record.trace_id and record.span_id."""
        record = self.record()
        with tracer_provider.get_tracer("t").start_as_current_span("work") as span:
            assert TraceContextFilter().filter(record)
        assert ids(span) == {"trace_id": record.trace_id, "span_id": record.span_id}

    def test_outside_span(self) -> None:
        """Outside a span the filter sets nothing, or the default it was given."""
        bare, filled = self.record(), self.record()
        TraceContextFilter().filter(bare)
        TraceContextFilter(default="").filter(filled)
        assert (False, "", "") == (hasattr(bare, "trace_id"), filled.trace_id, filled.span_id)


class TestCallEvent:
    def call(self, mock: MockOllama, tp: TracerProvider, **options: Any) -> list[dict[str, Any]]:
        otel_llm.instrument(tracer_provider=tp, meter_provider=MeterProvider(), **options)
        with capture_logs() as logs, httpx.Client(base_url=mock.url) as client:
            client.post("/api/chat", json={**CHAT, "stream": False})
        return [e for e in logs if e["event"] == "llm.call"]

    def test_fields(self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]) -> None:
        """log_events=True emits one llm.call with model, tokens, durations, status and ids."""
        spans, tp = instrumented
        (event,) = self.call(mock, tp, log_events=True)
        span = spans.one()
        attrs = span.attributes or {}
        expected = {
            "event": "llm.call",
            "log_level": "info",
            "operation": "chat",
            "provider": "ollama",
            "model": "llama3.2",
            "response_model": "llama3.2",
            "server_address": "127.0.0.1",
            "server_port": mock.port,
            "stream": False,
            "status": "ok",
            "http_status": 200,
            "input_tokens": attrs["gen_ai.usage.input_tokens"],
            "output_tokens": attrs["gen_ai.usage.output_tokens"],
            "finish_reasons": ["stop"],
            "load_s": attrs["ollama.load_duration"],
            "prompt_eval_s": attrs["ollama.prompt_eval_duration"],
            "eval_s": attrs["ollama.eval_duration"],
            "server_total_s": attrs["ollama.total_duration"],
            **ids(span),
        }
        duration = event.pop("duration_s")
        assert expected == event
        assert pytest.approx((span.end_time - span.start_time) / 1e9, abs=1e-5) == duration  # type: ignore[operator]

    def test_error(self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]) -> None:
        """A failed call logs at warning with status error and its error type."""
        _, tp = instrumented
        mock.default = Scenario(status=404)
        try:
            (event,) = self.call(mock, tp, log_events=True)
        finally:
            mock.default = Scenario()
        assert ("warning", "error", "404") == (
            event["log_level"],
            event["status"],
            event["error_type"],
        )

    def test_no_content_by_default(
        self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]
    ) -> None:
        """Without content capture the event carries no prompt or completion."""
        _, tp = instrumented
        (event,) = self.call(mock, tp, log_events=True)
        assert not {"input_messages", "output_text"} & set(event)

    def test_content_when_captured(
        self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]
    ) -> None:
        """With content capture on the event carries the completion text."""
        _, tp = instrumented
        (event,) = self.call(mock, tp, log_events=True, capture_content=True)
        assert Scenario().reply == event["output_text"]

    def test_off_by_default(
        self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]
    ) -> None:
        """Without log_events no event is emitted."""
        _, tp = instrumented
        assert [] == self.call(mock, tp)

    def test_from_environment(
        self,
        mock: MockOllama,
        instrumented: tuple[Spans, TracerProvider],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """OTEL_LLM_LOG_EVENTS=true turns the event on."""
        _, tp = instrumented
        monkeypatch.setenv("OTEL_LLM_LOG_EVENTS", "true")
        assert 1 == len(self.call(mock, tp))


class TestStructlogUntouched:
    def test_instrument_keeps_config(
        self, mock: MockOllama, instrumented: tuple[Spans, TracerProvider]
    ) -> None:
        """instrument() (with log events on) leaves the app's structlog configuration as it was."""
        _, tp = instrumented
        processors = [structlog.processors.add_log_level, structlog.processors.JSONRenderer()]
        structlog.configure(processors=processors)
        try:
            before = {**structlog.get_config(), "processors": list(processors)}
            otel_llm.instrument(tracer_provider=tp, meter_provider=MeterProvider(), log_events=True)
            with httpx.Client(base_url=mock.url) as client:
                client.get("/api/tags")
            after = structlog.get_config()
            assert before == {**after, "processors": list(after["processors"])}
        finally:
            structlog.reset_defaults()
