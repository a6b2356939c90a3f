"""otel_llm: one OpenTelemetry GenAI span (and metrics) for every Ollama call made through httpx.

    import otel_llm
    otel_llm.instrument()

The data path, one module per step: ``_patch`` (request) → ``adapters`` (endpoint,
wire format) → ``_span`` → ``_observe`` (stream observer) → ``_finish`` (span end,
metrics, log event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otel_llm._types import LLMCall, Redactor
from otel_llm.chains import agent, retrieval, tool, workflow
from otel_llm.instrumentor import LLMInstrumentor
from otel_llm.tags import tags
from otel_llm.version import __version__

__all__ = [
    "LLMCall",
    "LLMInstrumentor",
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


def instrument(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    capture_content: bool | None = None,
    content_max_length: int | None = None,
    redact: Redactor | None = None,
    legacy_attributes: bool | None = None,
    ollama_hosts: Iterable[str] | None = None,
    providers: Mapping[str, str] | None = None,
    default_provider: str | None = None,
    propagate: bool | None = None,
    http_spans: bool | None = None,
    traces_exporter: str | None = None,
    baggage_keys: Iterable[str] | None = None,
    **options: Any,
) -> None:
    """Trace every LLM call made through httpx or httpx2 from now on (idempotent).

    Uses the app's global Tracer/Meter providers if it set them, else builds them
    from the standard ``OTEL_*`` environment. Keywords override the environment:

    Args:
        capture_content: record prompts and completions (off; or set
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
        content_max_length: longest recorded text before truncation.
        redact: called on every captured text before it is recorded.
        legacy_attributes: also emit pre-1.37 names (``gen_ai.system`` ...).
        ollama_hosts: ``host:port`` of Ollama servers besides ``OLLAMA_HOST``/port 11434.
        providers: ``{"host[:port]": provider}`` for other OpenAI-compatible servers.
        default_provider: provider of unknown OpenAI-compatible hosts (``openai``).
        propagate: inject ``traceparent``/baggage into LLM requests (on).
        http_spans: add opentelemetry-instrumentation-httpx child spans (off: costly).
        traces_exporter: like ``OTEL_TRACES_EXPORTER`` when we build the provider.
        baggage_keys: baggage keys copied to span attributes besides the defaults
            (``session.id``, ``user.id``, ``gen_ai.agent.name``, ``otel_llm.tag.*``).
        **options: the metrics and logs switches (``metrics``, ``server_metrics``,
            ``latest_metrics``, ``max_models``, ``prometheus_port``, ``prometheus_host``,
            ``log_events``, ``ollama_residency``; see docs/metrics.md).
    """
    if is_instrumented():
        return
    LLMInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        content_max_length=content_max_length,
        redact=redact,
        legacy_attributes=legacy_attributes,
        ollama_hosts=ollama_hosts,
        providers=providers,
        default_provider=default_provider,
        propagate=propagate,
        http_spans=http_spans,
        traces_exporter=traces_exporter,
        baggage_keys=baggage_keys,
        **options,
    )


def uninstrument() -> None:
    """Undo ``instrument()``: every patched callable is restored."""
    if is_instrumented():
        LLMInstrumentor().uninstrument()


def is_instrumented() -> bool:
    return bool(LLMInstrumentor().is_instrumented_by_opentelemetry)
