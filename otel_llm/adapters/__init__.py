"""Which protocol a request speaks: endpoint path → ``Endpoint``, or None.

Each adapter module declares its ``ROUTES`` (endpoint paths, path prefix, the
provider its API names); the table is built from them. Adding a provider is one
module and its entry in ``REGISTERED``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from otel_llm._types import Endpoint, Routes
from otel_llm.adapters import lmstudio, ollama, ollama_models, openai_compat

__all__ = ["REGISTERED", "Endpoint", "build_table", "match"]

REGISTERED: Final[tuple[Routes, ...]] = (
    ollama.ROUTES,
    openai_compat.ROUTES,
    lmstudio.ROUTES,
    ollama_models.ROUTES,
    ollama_models.DELETE_ROUTES,
)
"""Every adapter module's declaration, in the order their paths are claimed."""


def build_table(registered: Iterable[Routes], method: str = "POST") -> dict[str, Endpoint]:
    """Path → ``Endpoint`` for ``method``; a path claimed twice, or outside its prefix, is a bug."""
    table: dict[str, Endpoint] = {}
    for routes in registered:
        if routes.method != method:
            continue
        for path, operation in routes.endpoints.items():
            if path in table:
                raise ValueError(f"{path} is declared by two adapters")
            if not path.startswith(routes.prefix):
                raise ValueError(f"{path} is outside its adapter's prefix {routes.prefix}")
            table[path] = Endpoint(routes.adapter, operation, routes.provider)
    return table


def _markers(registered: Iterable[Routes]) -> tuple[str, ...]:
    """The prefixes to look for in a mounted path; one inside another is looked for once."""
    prefixes = {routes.prefix for routes in registered if routes.method == "POST"}
    return tuple(
        sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes))
    )


_TABLE: Final = build_table(REGISTERED)
_MARKERS: Final = _markers(REGISTERED)
_SHORTEST: Final = min(map(len, _TABLE))
_OTHER_METHODS: Final = {
    method: build_table(REGISTERED, method)
    for method in {routes.method for routes in REGISTERED} - {"POST"}
}
"""Tables of the few non-POST operations (``DELETE /api/delete``), matched unmounted only."""


def match(method: str, path: str) -> Endpoint | None:
    """The endpoint a request targets; None (cheaply) for anything that is not an LLM call."""
    if method != "POST":
        other = _OTHER_METHODS.get(method)
        return other.get(path) if other is not None else None
    hit = _TABLE.get(path)
    if hit is not None or len(path) <= _SHORTEST:
        return hit
    # Servers behind a path prefix (``/ollama/api/chat``) keep the suffix.
    for marker in _MARKERS:
        at = path.rfind(marker)
        if at > 0:
            hit = _TABLE.get(path[at:])
            if hit is not None:
                return hit
    return None
