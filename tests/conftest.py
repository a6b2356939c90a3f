"""Shared fixtures: one global in-memory TracerProvider, instrumentation per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# No exporter may reach for a collector that is not there while tests run.
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
os.environ.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
os.environ.pop("OLLAMA_HOST", None)

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import otel_llm

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)


CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

# The framework matrix needs its own environment (`make frameworks`), which sets this.
collect_ignore = [] if os.environ.get("OTEL_LLM_FRAMEWORKS") else ["frameworks"]


def require(tool: str, package: str | None = None) -> str:
    """The path of a real program a test needs: a failure under CI=true, a skip elsewhere."""
    import shutil

    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found (apt-get install -y {package or tool})"
        if CI:
            pytest.fail(message + "; CI=true needs it")
        pytest.skip(message)
    return path


class Spans:
    """The spans finished during one test."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def llm(self) -> list[ReadableSpan]:
        return [s for s in self.all() if s.attributes and "gen_ai.provider.name" in s.attributes]

    def one(self) -> ReadableSpan:
        spans = self.llm()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tracer_provider() -> TracerProvider:
    return _PROVIDER


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Instrumented with default options; the spans of this test only."""
    otel_llm.uninstrument()
    _EXPORTER.clear()
    otel_llm.instrument(tracer_provider=_PROVIDER)
    try:
        yield Spans(_EXPORTER)
    finally:
        otel_llm.uninstrument()
        _EXPORTER.clear()


@pytest.fixture
def collected() -> Iterator[Spans]:
    """The span exporter without instrumenting (tests call ``instrument`` themselves)."""
    otel_llm.uninstrument()
    _EXPORTER.clear()
    try:
        yield Spans(_EXPORTER)
    finally:
        otel_llm.uninstrument()
        _EXPORTER.clear()
