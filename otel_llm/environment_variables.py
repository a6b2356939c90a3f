"""Environment variables otel_llm reads (once, at ``instrument()``).

Keyword arguments to ``instrument()`` win over these; these win over defaults.
"""

from typing import Final

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)
"""Standard GenAI flag: ``true`` (or ``SPAN_ONLY`` / ``SPAN_AND_EVENT``) records prompts
and completions on spans. Anything else, or unset, records no content."""

OTEL_LLM_CAPTURE_CONTENT: Final = "OTEL_LLM_CAPTURE_CONTENT"
"""Our own switch for content capture (``true``/``false``); overrides the standard one."""

OTEL_LLM_CONTENT_MAX_LENGTH: Final = "OTEL_LLM_CONTENT_MAX_LENGTH"
"""Longest captured text, in characters, before it is truncated (default 4096)."""

OTEL_LLM_LEGACY_ATTRIBUTES: Final = "OTEL_LLM_LEGACY_ATTRIBUTES"
"""``true`` also emits pre-1.37 names (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``...)."""

OTEL_LLM_OLLAMA_HOSTS: Final = "OTEL_LLM_OLLAMA_HOSTS"
"""Comma-separated ``host:port`` list of Ollama servers (their ``/v1`` is labelled ``ollama``)."""

OTEL_LLM_PROVIDERS: Final = "OTEL_LLM_PROVIDERS"
"""Comma-separated ``host[:port]=provider`` overrides for OpenAI-compatible servers."""

OTEL_LLM_HTTP_SPANS: Final = "OTEL_LLM_HTTP_SPANS"
"""``true`` adds opentelemetry-instrumentation-httpx's HTTP child spans (costly; off)."""

OTEL_LLM_PROPAGATE: Final = "OTEL_LLM_PROPAGATE"
"""``false`` stops injecting ``traceparent``/``baggage`` into LLM requests (on by default)."""

OLLAMA_HOST: Final = "OLLAMA_HOST"
"""Ollama's own variable; the server it names is an Ollama server."""

OTEL_LLM_BAGGAGE_KEYS: Final = "OTEL_LLM_BAGGAGE_KEYS"
"""Comma-separated baggage keys copied to LLM span attributes, besides ``session.id``,
``user.id``, ``gen_ai.agent.name``, ``gen_ai.conversation.id`` and ``otel_llm.tag.*``."""

OTEL_LLM_EXPORT_FLUSH_TIMEOUT: Final = "OTEL_LLM_EXPORT_FLUSH_TIMEOUT"
"""Milliseconds (default 2000) an export may go unanswered during a flush or at exit before
otel_llm's OTLP exporters count the collector as down and drop the rest; ``0`` waits as long
as the exporter's own timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""
