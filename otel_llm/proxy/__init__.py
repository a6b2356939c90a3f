"""``otel-llm proxy``: a sidecar in front of Ollama for clients ``import otel_llm`` cannot reach.

Go, JavaScript, curl or any other client points at the proxy instead of Ollama and
gets the same GenAI spans and metrics as an instrumented Python app, continuing its own
trace (``traceparent``) and tagged by its own ``baggage``. The request path, one module
per step:

``app`` (SERVER span, context, refusals) → ``forward`` (upstream exchange through an
``httpx.AsyncClient`` patched by ``otel_llm.instrument()``: one telemetry core; under
it, ``upstream`` is a lean HTTP/1.1 transport) with
``headers`` (hop-by-hop rules) and ``auth`` (bearer tokens); ``admin`` serves
``/metrics``, ``/healthz``, ``/readyz``; ``protocol`` is the client connection (uvicorn's
HTTP/1.1 with header size, count and time limits); ``server`` runs both; ``config``
resolves flags and ``OTEL_LLM_PROXY_*`` variables. Needs the ``proxy`` extra.
"""

from otel_llm.proxy.app import ProxyApp
from otel_llm.proxy.config import ConfigError, ProxyConfig, parse_args
from otel_llm.proxy.server import ProxyServer, main

__all__ = ["ConfigError", "ProxyApp", "ProxyConfig", "ProxyServer", "main", "parse_args"]
