"""LM Studio's own REST API (``/api/v0/*``): OpenAI's wire format on LM Studio's paths.

LM Studio (0.3.6 or newer, port 1234 by default) serves three inference APIs: the
OpenAI-compatible ``/v1/*`` (read by ``openai_compat``, labelled by host like any
``/v1`` server), its newer native ``/api/v1/chat`` (a different format, not read
here), and the REST API v0 declared here. Per LM Studio's documentation
(lmstudio.ai/docs/developer/rest/endpoints), v0 takes the same request bodies as
OpenAI's chat completions, completions and embeddings and answers in the same shape
(``choices``, ``usage``; SSE ``data:`` events when ``stream`` is true), adding
``stats`` (tokens per second, time to first token, generation time), ``model_info``
and ``runtime`` objects, which we do not read. So the OpenAI-compatible adapter
parses it; what this module adds is the paths and the provider they imply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from otel_llm import semconv as sc
from otel_llm._types import Routes
from otel_llm.adapters import openai_compat

__all__ = ["ENDPOINTS", "PROVIDER", "ROUTES"]

PROVIDER: Final = "lm_studio"
"""``gen_ai.provider.name`` for LM Studio (no semconv well-known value exists)."""

ENDPOINTS: Final[Mapping[str, str]] = {
    "/api/v0/chat/completions": sc.CHAT,
    "/api/v0/completions": sc.TEXT_COMPLETION,
    "/api/v0/embeddings": sc.EMBEDDINGS,
}

ROUTES: Final = Routes(openai_compat.adapter, ENDPOINTS, prefix="/api/v0/", provider=PROVIDER)
