"""Every environment variable the otel_llm library reads, one constant and docstring each.

Read once, at ``instrument()`` (``_config.resolve``); keyword arguments to
``instrument()`` win over these, and these win over defaults. The proxy's own
``OTEL_LLM_PROXY_*`` variables live with its flags in ``otel_llm.proxy.config``.
"""

from typing import Final

# -- spans and content ------------------------------------------------------------------

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

OTEL_LLM_HTTP_SPANS: Final = "OTEL_LLM_HTTP_SPANS"
"""``true`` adds opentelemetry-instrumentation-httpx's HTTP child spans (costly; off)."""

OTEL_LLM_PROPAGATE: Final = "OTEL_LLM_PROPAGATE"
"""``false`` stops injecting ``traceparent``/``baggage`` into LLM requests (on by default)."""

OTEL_LLM_BAGGAGE_KEYS: Final = "OTEL_LLM_BAGGAGE_KEYS"
"""Comma-separated baggage keys copied to LLM span attributes, besides ``session.id``,
``user.id``, ``gen_ai.agent.name``, ``gen_ai.conversation.id`` and ``otel_llm.tag.*``."""

OTEL_LLM_SDK_SPANS: Final = "OTEL_LLM_SDK_SPANS"
"""``nest`` (default): under an SDK's own GenAI span (pydantic-ai, logfire, OpenLLMetry) our
span nests and records no metrics; ``ignore``: SDK spans are not looked for."""

# -- which server is which provider -------------------------------------------------------

OTEL_LLM_OLLAMA_HOSTS: Final = "OTEL_LLM_OLLAMA_HOSTS"
"""Comma-separated ``host:port`` list of Ollama servers (their ``/v1`` is labelled ``ollama``)."""

OTEL_LLM_PROVIDERS: Final = "OTEL_LLM_PROVIDERS"
"""Comma-separated ``host[:port]=provider`` overrides for OpenAI-compatible servers."""

OLLAMA_HOST: Final = "OLLAMA_HOST"
"""Ollama's own variable (``host[:port]``, scheme optional); the server it names is Ollama."""

OLLAMA_BASE_URL: Final = "OLLAMA_BASE_URL"
"""pydantic-ai's Ollama URL (``http://host:port/v1``); the server it names is Ollama."""

OLLAMA_API_BASE: Final = "OLLAMA_API_BASE"
"""LiteLLM's Ollama URL (``http://host:port``); the server it names is Ollama."""

# -- metrics and logs ---------------------------------------------------------------------

OTEL_LLM_METRICS: Final = "OTEL_LLM_METRICS"
"""``false`` records no metrics (spans only)."""

OTEL_LLM_LATEST_METRICS: Final = "OTEL_LLM_LATEST_METRICS"
"""``true`` emits the newer ``gen_ai.client.inference.*`` names instead of the classic set."""

OTEL_LLM_SERVER_METRICS: Final = "OTEL_LLM_SERVER_METRICS"
"""``false`` skips the three ``gen_ai.server.*`` histograms (a third of the metrics cost)."""

OTEL_LLM_MAX_MODELS: Final = "OTEL_LLM_MAX_MODELS"
"""Distinct model values kept as metric attributes (default 100); later ones are ``_OTHER``."""

OTEL_LLM_LOG_EVENTS: Final = "OTEL_LLM_LOG_EVENTS"
"""``true`` emits one structlog ``llm.call`` event per finished call."""

OTEL_LLM_OLLAMA_RESIDENCY: Final = "OTEL_LLM_OLLAMA_RESIDENCY"
"""``true`` polls Ollama's ``/api/ps`` for the model residency gauges."""

OTEL_LLM_OLLAMA_CONTEXT_LOOKUP: Final = "OTEL_LLM_OLLAMA_CONTEXT_LOOKUP"
"""``false`` stops learning Ollama models' context windows from ``/api/show`` and
``/api/ps``: only a request's ``options.num_ctx`` then gives ``ollama.context.*``."""

OTEL_LLM_METRIC_TAGS: Final = "OTEL_LLM_METRIC_TAGS"
"""Comma-separated traffic tags that become attributes of the token-usage and duration
metrics (off when unset): a ``tags()`` name (``team`` is ``otel_llm.tag.team``, ``agent``
is ``gen_ai.agent.name``) or a full baggage key. Each keeps ``OTEL_LLM_MAX_TAG_VALUES``
distinct values; later ones are ``_OTHER``."""

OTEL_LLM_MAX_TAG_VALUES: Final = "OTEL_LLM_MAX_TAG_VALUES"
"""Distinct values kept per metric tag (default 20); later ones are ``_OTHER``."""

# -- standard OpenTelemetry exporter variables, for the providers we build ----------------

OTEL_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
"""Span exporters when we build the TracerProvider: ``otlp`` (default), ``console``,
``otlp_json_file``, ``jaeger``, ``none``; comma-separated."""

OTEL_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
"""Metric exporters when we build the MeterProvider: ``otlp`` (default), ``console``,
``prometheus`` (our direct ``/metrics`` endpoint), ``none``; comma-separated."""

OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""``http/protobuf`` (default) or ``grpc`` for the OTLP exporters."""

OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
"""Like ``OTEL_EXPORTER_OTLP_PROTOCOL``, for spans only (wins over it)."""

OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
"""Like ``OTEL_EXPORTER_OTLP_PROTOCOL``, for metrics only (wins over it)."""

OTEL_EXPORTER_PROMETHEUS_HOST: Final = "OTEL_EXPORTER_PROMETHEUS_HOST"
"""Address the direct Prometheus endpoint binds (default ``127.0.0.1``)."""

OTEL_EXPORTER_PROMETHEUS_PORT: Final = "OTEL_EXPORTER_PROMETHEUS_PORT"
"""Port of the direct Prometheus endpoint (default 9464; ``0``: a free port)."""

OTEL_LLM_TRACES_FILE: Final = "OTEL_LLM_TRACES_FILE"
"""Where ``OTEL_TRACES_EXPORTER=otlp_json_file`` writes OTLP JSON lines
(default ``otel-traces.jsonl``)."""

# -- the demo (``otel-llm demo``) ---------------------------------------------------------

OTEL_LLM_DEMO_MODEL: Final = "OTEL_LLM_DEMO_MODEL"
"""Chat model the demo asks for (default ``llama3.2``)."""

OTEL_LLM_DEMO_EMBED_MODEL: Final = "OTEL_LLM_DEMO_EMBED_MODEL"
"""Embedding model the demo asks for (default ``all-minilm``)."""

OTEL_LLM_EXPORT_FLUSH_TIMEOUT: Final = "OTEL_LLM_EXPORT_FLUSH_TIMEOUT"
"""Milliseconds (default 2000) an export may go unanswered during a flush or at exit before
otel_llm's OTLP exporters count the collector as down and drop the rest; ``0`` waits as long
as the exporter's own timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""
