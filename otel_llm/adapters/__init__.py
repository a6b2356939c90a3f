"""Which protocol a request speaks: endpoint path → (adapter, operation), or None.

Adding a provider is adding a module here and its endpoints to ``_TABLE``.
"""

from __future__ import annotations

from typing import Final

from otel_llm._types import Adapter
from otel_llm.adapters import ollama, openai_compat

__all__ = ["Endpoint", "match"]

Endpoint = tuple[Adapter, str, bool]
"""(adapter, ``gen_ai.operation.name``, is Ollama's native API)."""

_TABLE: Final[dict[str, Endpoint]] = {
    **{path: (ollama.adapter, op, True) for path, op in ollama.ENDPOINTS.items()},
    **{path: (openai_compat.adapter, op, False) for path, op in openai_compat.ENDPOINTS.items()},
}
_MARKERS: Final = ("/api/", "/v1/")


def match(method: str, path: str) -> Endpoint | None:
    """The endpoint a request targets; None (cheaply) for anything that is not an LLM call."""
    if method != "POST":
        return None
    hit = _TABLE.get(path)
    if hit is not None or len(path) < 8:
        return hit
    # Servers behind a path prefix (``/ollama/api/chat``) keep the suffix.
    for marker in _MARKERS:
        at = path.rfind(marker)
        if at > 0:
            return _TABLE.get(path[at:])
    return None
