"""otel_llm: one OpenTelemetry GenAI span (and metrics) for every Ollama call made through httpx.

    import otel_llm
    otel_llm.instrument()

The data path, one module per step: ``_patch`` (request) → ``adapters`` (endpoint,
wire format) → ``_span`` → ``_observe`` (stream observer) → ``_finish`` (span end,
metrics, log event).
"""

import typing

from otel_llm import _config
from otel_llm._config import Redactor
from otel_llm._types import LLMCall
from otel_llm.chains import agent, retrieval, tool, workflow
from otel_llm.instrumentor import LLMInstrumentor
from otel_llm.tags import tags
from otel_llm.version import __version__

__all__ = [
    "LLMCall",
    "LLMInstrumentor",
    "Redactor",
    "__version__",
    "agent",
    "instrument",
    "is_instrumented",
    "retrieval",
    "tags",
    "tool",
    "uninstrument",
    "workflow",
]


def instrument(**options: typing.Any) -> None:
    """Trace every LLM call made through httpx, httpx2, requests or aiohttp (idempotent).

    Uses the app's global Tracer/Meter providers if it set them, else builds them
    from the standard ``OTEL_*`` environment. Keywords override the environment;
    each is listed, with its variable and default, on ``otel_llm._config.Options``
    (``capture_content``, ``ollama_hosts``, ``providers``, ``prometheus_port``, ...;
    see the README and docs/metrics.md). An unknown keyword raises ``TypeError``
    naming the closest valid one.
    """
    _config.Options.of(**options)  # a typo fails here, even when already instrumented
    if is_instrumented():
        return
    LLMInstrumentor().instrument(**options)


def uninstrument() -> None:
    """Undo ``instrument()``: every patched callable is restored."""
    if is_instrumented():
        LLMInstrumentor().uninstrument()


def is_instrumented() -> bool:
    return bool(LLMInstrumentor().is_instrumented_by_opentelemetry)
