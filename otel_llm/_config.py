"""Resolve options once, at ``instrument()``: the hot path reads only ``Settings``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from otel_llm import environment_variables as env
from otel_llm._types import Redactor
from otel_llm.tags import allow_list

__all__ = ["Settings", "host_key", "parse_ollama_host", "resolve"]

OLLAMA_DEFAULT_PORT = 11434

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


@dataclass(frozen=True, slots=True)
class Settings:
    """Options in force for the current instrumentation."""

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
    _providers_seen: dict[tuple[str, int | None, bool], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def provider_for(self, host: str, port: int | None, native: bool) -> str:
        """The ``gen_ai.provider.name`` for a server, decided by configuration, not by SDK.

        Decided once per server: apps talk to a handful, so the answer is remembered.
        """
        seen = self._providers_seen
        found = seen.get((host, port, native))
        if found is None:
            found = self._decide_provider(host, port, native)
            if len(seen) < 1024:
                seen[(host, port, native)] = found
        return found

    def _decide_provider(self, host: str, port: int | None, native: bool) -> str:
        key = host_key(host, port)
        if key in self.providers:
            return self.providers[key]
        if host in self.providers:
            return self.providers[host]
        if native or key in self.ollama_hosts or port == OLLAMA_DEFAULT_PORT:
            return "ollama"
        if host in KNOWN_PROVIDERS:
            return KNOWN_PROVIDERS[host]
        if host.endswith(".openai.azure.com"):
            return "azure.ai.openai"
        return self.default_provider


def host_key(host: str, port: int | None) -> str:
    """``host:port`` in one canonical spelling."""
    return f"{host.lower().strip('[]')}:{port}" if port else host.lower().strip("[]")


def parse_ollama_host(value: str) -> str | None:
    """Ollama's own reading of ``OLLAMA_HOST`` (scheme and port optional) as ``host:port``."""
    value = value.strip()
    if not value:
        return None
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    host = parts.hostname or "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None:
        port = 443 if parts.scheme == "https" and ":" not in parts.netloc else OLLAMA_DEFAULT_PORT
    return host_key(host, port)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or not raw.strip() else raw.strip().lower() in _TRUE


def _capture_from_env() -> bool:
    own = os.environ.get(env.OTEL_LLM_CAPTURE_CONTENT)
    if own is not None and own.strip():
        return own.strip().lower() in _TRUE
    std = os.environ.get(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "")
    return std.strip().lower() in _CAPTURE_ON


def _split(raw: str) -> Iterable[str]:
    return (item.strip() for item in raw.split(",") if item.strip())


def resolve(
    *,
    capture_content: bool | None = None,
    content_max_length: int | None = None,
    redact: Redactor | None = None,
    legacy_attributes: bool | None = None,
    ollama_hosts: Iterable[str] | None = None,
    providers: Mapping[str, str] | None = None,
    default_provider: str | None = None,
    propagate: bool | None = None,
    http_spans: bool | None = None,
    baggage_keys: Iterable[str] | None = None,
) -> Settings:
    """Merge keyword options over the environment over defaults."""
    hosts: set[str] = set()
    for raw in ollama_hosts if ollama_hosts is not None else ():
        parsed = parse_ollama_host(raw)
        if parsed:
            hosts.add(parsed)
    for raw in _split(os.environ.get(env.OTEL_LLM_OLLAMA_HOSTS, "")):
        parsed = parse_ollama_host(raw)
        if parsed:
            hosts.add(parsed)
    from_ollama_host = parse_ollama_host(os.environ.get(env.OLLAMA_HOST, ""))
    if from_ollama_host:
        hosts.add(from_ollama_host)
        if from_ollama_host.startswith("127.0.0.1:"):
            hosts.add("localhost:" + from_ollama_host.split(":", 1)[1])

    provider_map: dict[str, str] = {}
    for item in _split(os.environ.get(env.OTEL_LLM_PROVIDERS, "")):
        target, sep, name = item.partition("=")
        if sep and target.strip() and name.strip():
            provider_map[target.strip().lower()] = name.strip()
    for target, name in (providers or {}).items():
        provider_map[target.lower()] = name

    max_len = content_max_length
    if max_len is None:
        try:
            max_len = int(os.environ.get(env.OTEL_LLM_CONTENT_MAX_LENGTH, "4096"))
        except ValueError:
            max_len = 4096
    return Settings(
        capture_content=_capture_from_env() if capture_content is None else capture_content,
        content_max_length=max(16, max_len),
        redact=redact,
        legacy_attributes=(
            _flag(env.OTEL_LLM_LEGACY_ATTRIBUTES, False)
            if legacy_attributes is None
            else legacy_attributes
        ),
        ollama_hosts=frozenset(hosts),
        providers=provider_map,
        default_provider=default_provider or "openai",
        propagate=_flag(env.OTEL_LLM_PROPAGATE, True) if propagate is None else propagate,
        http_spans=_flag(env.OTEL_LLM_HTTP_SPANS, False) if http_spans is None else http_spans,
        baggage_keys=allow_list(
            list(baggage_keys or ()) + list(_split(os.environ.get(env.OTEL_LLM_BAGGAGE_KEYS, "")))
        ),
    )
