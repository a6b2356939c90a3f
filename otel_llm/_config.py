"""Every ``instrument()`` option, declared once (``Options``) and resolved once.

``Options`` is the keywords as given; ``resolve`` merges them over the environment
(``environment_variables``) over defaults into ``Settings``, the only thing the
per-call path reads, and ``resolve_metrics`` into ``MetricsSettings``, read once
when the sinks are built. An unknown keyword is a ``TypeError`` naming the
closest valid one: a typo must not silently do nothing.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from otel_llm import environment_variables as env
from otel_llm.tags import allow_list, metric_tag_key

if TYPE_CHECKING:
    from otel_llm._types import LLMCall

__all__ = [
    "MetricsSettings",
    "Options",
    "Redactor",
    "Settings",
    "host_key",
    "parse_ollama_host",
    "resolve",
    "resolve_metrics",
]

_logger = logging.getLogger("otel_llm")

Redactor = Callable[[str], str]
"""Applied to every captured text before it is recorded (content capture only)."""

ResidencyHosts = bool | Iterable[str] | Callable[[], Iterable[str]]
"""``True`` (the configured Ollama servers), a list of ``host[:port]``, or a callable
returning one (asked at every poll)."""

OLLAMA_DEFAULT_PORT: Final = 11434
DEFAULT_MAX_MODELS: Final = 100
DEFAULT_MAX_TAG_VALUES: Final = 20
"""Distinct values kept per metric tag unless ``max_tag_values`` says otherwise."""
"""Distinct model values kept as metric attributes unless ``max_models`` says otherwise."""

# Well-known OpenAI-compatible hosts and their semconv provider names.
KNOWN_PROVIDERS: Mapping[str, str] = {
    "api.openai.com": "openai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.moonshot.ai": "moonshot_ai",
}

_TRUE = {"1", "true", "yes", "on"}
_CAPTURE_ON = {"true", "1", "span_only", "span_and_event"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The keywords of ``instrument()``, as given; ``None`` leaves the choice to the
    environment variable named in brackets, then to the default.

    Spans and content:

    * ``tracer_provider``: the TracerProvider to use (else the global one, else one we
      build from ``OTEL_*``). ``traces_exporter``: like ``OTEL_TRACES_EXPORTER`` when
      we build it.
    * ``capture_content``: record prompts and completions (off;
      ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, ``OTEL_LLM_CAPTURE_CONTENT``).
      ``content_max_length``: longest recorded text (4096; ``OTEL_LLM_CONTENT_MAX_LENGTH``).
      ``redact``: called on every captured text before it is recorded.
    * ``legacy_attributes``: also emit pre-1.37 names (off; ``OTEL_LLM_LEGACY_ATTRIBUTES``).
    * ``ollama_hosts``: ``host:port`` of Ollama servers besides port 11434 and those named
      by ``OLLAMA_HOST``, ``OLLAMA_BASE_URL``, ``OLLAMA_API_BASE``, ``OTEL_LLM_OLLAMA_HOSTS``.
    * ``providers``: ``{"host[:port]": provider}`` for other servers (``OTEL_LLM_PROVIDERS``);
      ``default_provider``: provider of unknown OpenAI-compatible hosts (``openai``).
    * ``propagate``: inject ``traceparent``/baggage into LLM requests (on; ``OTEL_LLM_PROPAGATE``).
    * ``http_spans``: opentelemetry-instrumentation-httpx child spans (off; costly;
      ``OTEL_LLM_HTTP_SPANS``).
    * ``baggage_keys``: baggage keys copied to span attributes besides the defaults
      (``OTEL_LLM_BAGGAGE_KEYS``).
    * ``ollama_context_lookup``: learn each Ollama model's context window from
      ``/api/show`` and ``/api/ps`` in the background (on; ``OTEL_LLM_OLLAMA_CONTEXT_LOOKUP``);
      off, only a request's ``options.num_ctx`` gives one (docs/attributes.md).
    * ``sdk_spans``: what to do when an SDK's own GenAI span is already current
      (``nest``: our span nests under it and records no metrics; ``ignore``: count the call
      again; ``OTEL_LLM_SDK_SPANS``, default ``nest``; docs/reach.md).

    Metrics and logs (docs/metrics.md):

    * ``meter_provider``: the MeterProvider to use; ``metrics_exporter``: like
      ``OTEL_METRICS_EXPORTER`` when we build it.
    * ``metrics`` (on; ``OTEL_LLM_METRICS``), ``latest_metrics`` (off;
      ``OTEL_LLM_LATEST_METRICS``), ``server_metrics`` (on; ``OTEL_LLM_SERVER_METRICS``),
      ``max_models`` (100; ``OTEL_LLM_MAX_MODELS``).
    * ``prometheus_port``, ``prometheus_host``, ``prometheus_resource_labels``: the
      direct ``/metrics`` endpoint (``OTEL_METRICS_EXPORTER=prometheus``,
      ``OTEL_EXPORTER_PROMETHEUS_PORT``, ``OTEL_EXPORTER_PROMETHEUS_HOST``).
    * ``metric_tags``: traffic tags (``tags(team=...)`` names or baggage keys) that become
      attributes of the token-usage and duration metrics (none; ``OTEL_LLM_METRIC_TAGS``),
      each capped at ``max_tag_values`` distinct values (20; ``OTEL_LLM_MAX_TAG_VALUES``).
    * ``log_events``: one structlog ``llm.call`` event per call (off; ``OTEL_LLM_LOG_EVENTS``).
    * ``ollama_residency``: ``/api/ps`` gauges (off; ``OTEL_LLM_OLLAMA_RESIDENCY``).
    * ``sinks``: more callables handed every finished ``LLMCall`` (benchmarks, tests).
    """

    tracer_provider: Any = None
    traces_exporter: str | None = None
    capture_content: bool | None = None
    content_max_length: int | None = None
    redact: Redactor | None = None
    legacy_attributes: bool | None = None
    ollama_hosts: Iterable[str] | None = None
    providers: Mapping[str, str] | None = None
    default_provider: str | None = None
    propagate: bool | None = None
    http_spans: bool | None = None
    baggage_keys: Iterable[str] | None = None
    ollama_context_lookup: bool | None = None
    sdk_spans: str | None = None
    meter_provider: Any = None
    metrics_exporter: str | None = None
    metrics: bool | None = None
    latest_metrics: bool | None = None
    server_metrics: bool | None = None
    max_models: int | None = None
    metric_tags: Iterable[str] | None = None
    max_tag_values: int | None = None
    prometheus_port: int | None = None
    prometheus_host: str | None = None
    prometheus_resource_labels: Iterable[str] | None = None
    log_events: bool | None = None
    ollama_residency: ResidencyHosts | None = None
    sinks: Sequence[Callable[[LLMCall], None]] | None = None

    @classmethod
    def of(cls, **keywords: Any) -> Options:
        """``Options`` from ``instrument()``'s keywords; ``TypeError`` for an unknown one."""
        unknown = sorted(keywords.keys() - OPTION_NAMES)
        if unknown:
            raise TypeError(_unknown_message(unknown[0]))
        return cls(**keywords)


OPTION_NAMES: Final = frozenset(f.name for f in fields(Options))
"""Every keyword ``instrument()`` takes."""


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(OPTION_NAMES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"instrument() got an unexpected keyword argument {name!r}{hint}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Options in force for the current instrumentation (the per-call path reads these)."""

    capture_content: bool = False
    content_max_length: int = 4096
    redact: Redactor | None = None
    legacy_attributes: bool = False
    ollama_hosts: frozenset[str] = frozenset()
    providers: Mapping[str, str] = field(default_factory=dict)
    default_provider: str = "openai"
    propagate: bool = True
    http_spans: bool = False
    cold_load_seconds: float = 0.25
    baggage_keys: frozenset[str] = frozenset()
    context_lookup: bool = True
    """Learn context windows from the server (``_context_window``); else request num_ctx only."""
    metric_tags: tuple[str, ...] = ()
    """Baggage keys that become metric attributes (``metric_tags``); captured at span start."""
    nest_in_sdk_spans: bool = True
    """An SDK's own GenAI span around the call: nest under it, record no metrics."""
    _providers_seen: dict[tuple[str, int | None, str | None], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def provider_for(self, host: str, port: int | None, implied: str | None = None) -> str:
        """The ``gen_ai.provider.name`` for a server, decided by configuration, not by SDK.

        ``implied`` is the provider the endpoint's API names (an adapter's declaration,
        e.g. ``ollama`` for Ollama's native paths); None when the API is shared
        (OpenAI-compatible). Decided once per server: apps talk to a handful.
        """
        seen = self._providers_seen
        key = (host, port, implied)
        found = seen.get(key)
        if found is None:
            found = self._decide_provider(host, port, implied)
            if len(seen) < 1024:
                seen[key] = found
        return found

    def _decide_provider(self, host: str, port: int | None, implied: str | None) -> str:
        key = host_key(host, port)
        if key in self.providers:
            return self.providers[key]
        if host in self.providers:
            return self.providers[host]
        if implied is not None:
            return implied
        if key in self.ollama_hosts or port == OLLAMA_DEFAULT_PORT:
            return "ollama"
        if host in KNOWN_PROVIDERS:
            return KNOWN_PROVIDERS[host]
        if host.endswith(".openai.azure.com"):
            return "azure.ai.openai"
        return self.default_provider


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The metrics and log-event switches in force, resolved once per ``instrument()``."""

    enabled: bool = True
    latest: bool = False
    server: bool = True
    max_models: int = DEFAULT_MAX_MODELS
    max_tag_values: int = DEFAULT_MAX_TAG_VALUES
    log_events: bool = False
    residency: ResidencyHosts = False
    exporter: str | None = None
    """``OTEL_METRICS_EXPORTER`` syntax for a MeterProvider we build (None: that variable)."""
    prometheus: tuple[str, int] | None = None
    """Address of the direct ``/metrics`` endpoint; None: no endpoint."""
    prometheus_resource_labels: tuple[str, ...] | None = None


def host_key(host: str, port: int | None) -> str:
    """``host:port`` in one canonical spelling."""
    return f"{host.lower().strip('[]')}:{port}" if port else host.lower().strip("[]")


def parse_ollama_host(value: str) -> str | None:
    """``host:port`` of a server named as Ollama and its clients do (``OLLAMA_HOST``, URLs).

    Scheme and port are optional: no scheme means port 11434, ``http://`` without a
    port means 80 and ``https://`` 443 (Ollama's ``envconfig.Host`` and ollama-python
    agree); a path (``http://gpu:11434/v1``) is ignored; ``0.0.0.0`` is this machine.
    """
    value = value.strip()
    if not value:
        return None
    default = OLLAMA_DEFAULT_PORT
    if "://" not in value:
        value = "http://" + value
    else:
        scheme = value.split("://", 1)[0].lower()
        default = {"http": 80, "https": 443}.get(scheme, OLLAMA_DEFAULT_PORT)
    parts = urlsplit(value)
    host = parts.hostname or "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    try:
        port = parts.port
    except ValueError:
        return None
    return host_key(host, port if port is not None else default)


def _with_loopback_aliases(hosts: set[str]) -> frozenset[str]:
    """``localhost`` and ``127.0.0.1`` name the same server: either spelling matches."""
    out = set(hosts)
    for item in hosts:
        host, _, port = item.rpartition(":")
        if host in ("127.0.0.1", "localhost"):
            out.add(f"{'localhost' if host == '127.0.0.1' else '127.0.0.1'}:{port}")
    return frozenset(out)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or not raw.strip() else raw.strip().lower() in _TRUE


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        _logger.error("otel_llm: %s=%r is not an integer; using %s", name, raw, default)
        return default


def _capture_from_env() -> bool:
    own = os.environ.get(env.OTEL_LLM_CAPTURE_CONTENT)
    if own is not None and own.strip():
        return own.strip().lower() in _TRUE
    std = os.environ.get(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "")
    return std.strip().lower() in _CAPTURE_ON


def _split(raw: str) -> Iterable[str]:
    return (item.strip() for item in raw.split(",") if item.strip())


_OLLAMA_URL_VARIABLES: Final = (env.OLLAMA_HOST, env.OLLAMA_BASE_URL, env.OLLAMA_API_BASE)
"""Variables other tools already read to find an Ollama server (Ollama, pydantic-ai, LiteLLM)."""


def _ollama_hosts(given: Iterable[str] | None) -> frozenset[str]:
    raws = [*(given or ()), *_split(os.environ.get(env.OTEL_LLM_OLLAMA_HOSTS, ""))]
    raws.extend(os.environ.get(name, "") for name in _OLLAMA_URL_VARIABLES)
    return _with_loopback_aliases({h for h in map(parse_ollama_host, raws) if h})


def resolve(options: Options | None = None) -> Settings:
    """The span settings: keyword options over the environment over defaults."""
    o = options or Options()
    provider_map: dict[str, str] = {}
    for item in _split(os.environ.get(env.OTEL_LLM_PROVIDERS, "")):
        target, sep, name = item.partition("=")
        if sep and target.strip() and name.strip():
            provider_map[target.strip().lower()] = name.strip()
    for target, name in (o.providers or {}).items():
        provider_map[target.lower()] = name

    named = o.metric_tags
    if named is None:
        named = _split(os.environ.get(env.OTEL_LLM_METRIC_TAGS, ""))
    metric_tags = tuple(dict.fromkeys(metric_tag_key(n) for n in named if n.strip()))
    max_len = o.content_max_length
    if max_len is None:
        max_len = _int(env.OTEL_LLM_CONTENT_MAX_LENGTH, 4096)
    return Settings(
        capture_content=_capture_from_env() if o.capture_content is None else o.capture_content,
        content_max_length=max(16, max_len),
        redact=o.redact,
        legacy_attributes=(
            _flag(env.OTEL_LLM_LEGACY_ATTRIBUTES, False)
            if o.legacy_attributes is None
            else o.legacy_attributes
        ),
        ollama_hosts=_ollama_hosts(o.ollama_hosts),
        providers=provider_map,
        default_provider=o.default_provider or "openai",
        propagate=_flag(env.OTEL_LLM_PROPAGATE, True) if o.propagate is None else o.propagate,
        http_spans=_flag(env.OTEL_LLM_HTTP_SPANS, False) if o.http_spans is None else o.http_spans,
        baggage_keys=allow_list(
            list(o.baggage_keys or ())
            + list(_split(os.environ.get(env.OTEL_LLM_BAGGAGE_KEYS, "")))
            + list(metric_tags)
        ),
        metric_tags=metric_tags,
        context_lookup=_either(o.ollama_context_lookup, env.OTEL_LLM_OLLAMA_CONTEXT_LOOKUP, True),
        nest_in_sdk_spans=_sdk_spans(o.sdk_spans) == "nest",
    )


SDK_SPAN_POLICIES: Final = ("nest", "ignore")


def _sdk_spans(value: str | None) -> str:
    """The SDK-span policy; an unknown value is logged and falls back to ``nest``."""
    raw = value if value is not None else os.environ.get(env.OTEL_LLM_SDK_SPANS, "")
    policy = raw.strip().lower() or "nest"
    if policy not in SDK_SPAN_POLICIES:
        _logger.error("otel_llm: SDK span policy %r is not one of %s", raw, SDK_SPAN_POLICIES)
        return "nest"
    return policy


def _either(value: bool | None, name: str, default: bool) -> bool:
    return _flag(name, default) if value is None else bool(value)


def resolve_metrics(options: Options | None = None) -> MetricsSettings:
    """The metrics and log-event switches: keyword options over the environment over defaults."""
    o = options or Options()
    max_models = o.max_models
    if max_models is None:
        max_models = _int(env.OTEL_LLM_MAX_MODELS, DEFAULT_MAX_MODELS)
    max_tag_values = o.max_tag_values
    if max_tag_values is None:
        max_tag_values = _int(env.OTEL_LLM_MAX_TAG_VALUES, DEFAULT_MAX_TAG_VALUES)
    residency = o.ollama_residency
    if residency is None:
        residency = _flag(env.OTEL_LLM_OLLAMA_RESIDENCY, False)
    exporter, address = _prometheus(o)
    labels = o.prometheus_resource_labels
    return MetricsSettings(
        enabled=_either(o.metrics, env.OTEL_LLM_METRICS, True),
        latest=_either(o.latest_metrics, env.OTEL_LLM_LATEST_METRICS, False),
        server=_either(o.server_metrics, env.OTEL_LLM_SERVER_METRICS, True),
        max_models=max(1, int(max_models)),
        max_tag_values=max(1, int(max_tag_values)),
        log_events=_either(o.log_events, env.OTEL_LLM_LOG_EVENTS, False),
        residency=residency,
        exporter=exporter,
        prometheus=address,
        prometheus_resource_labels=None if labels is None else tuple(labels),
    )


def _prometheus(o: Options) -> tuple[str | None, tuple[str, int] | None]:
    """(exporter names for a MeterProvider we build, direct endpoint address or None).

    ``prometheus_port`` alone (no ``OTEL_METRICS_EXPORTER``) means the provider we build
    gets no OTLP exporter aimed at a collector that is not there.
    """
    from otel_llm import prometheus  # its defaults; imported here, off the import path

    host = o.prometheus_host or (
        os.environ.get(env.OTEL_EXPORTER_PROMETHEUS_HOST, "").strip() or prometheus.DEFAULT_HOST
    )
    if o.prometheus_port is not None:
        exporter = o.metrics_exporter
        if exporter is None and env.OTEL_METRICS_EXPORTER not in os.environ:
            exporter = "prometheus"
        return exporter, (host, int(o.prometheus_port))
    names = o.metrics_exporter
    if names is None:
        names = os.environ.get(env.OTEL_METRICS_EXPORTER, "")
    if "prometheus" not in {n.strip().lower() for n in names.split(",")}:
        return o.metrics_exporter, None
    port = _int(env.OTEL_EXPORTER_PROMETHEUS_PORT, prometheus.DEFAULT_PORT)
    return o.metrics_exporter, (host, port)
