"""Traffic tagging: who made a call, carried as W3C baggage so it crosses processes too.

``with otel_llm.tags(session_id="s1", user_id="u7", agent="planner", team="search"):``
puts the values in baggage; every LLM span started in scope copies the allowed
baggage keys to attributes. The same keys sent by any client in a ``baggage``
header (through the proxy) tag its calls. Only the keys named by ``metric_tags`` (an
explicit allow-list, off by default) also become metric attributes, value-capped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage, context

from otel_llm import semconv as sc

__all__ = [
    "DEFAULT_KEYS",
    "TAG_PREFIX",
    "Tags",
    "attributes_from_baggage",
    "metric_tag_key",
    "tags",
]

TAG_PREFIX: Final = "otel_llm.tag."
"""Baggage key (and span attribute) prefix of free-form labels."""

DEFAULT_KEYS: Final = frozenset({"session.id", "user.id", sc.AGENT_NAME, sc.CONVERSATION_ID})
"""Baggage keys copied to span attributes by default (besides ``otel_llm.tag.*``)."""

_NAMED: Final = {
    "session_id": "session.id",
    "user_id": "user.id",
    "agent": sc.AGENT_NAME,
    "conversation_id": sc.CONVERSATION_ID,
}

F = TypeVar("F", bound=Callable[..., Any])


class Tags:
    """Context manager and decorator that puts tags in baggage for its scope."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self._tokens: list[object] = []

    def __enter__(self) -> Tags:
        ctx = context.get_current()
        for key, value in self.values.items():
            ctx = baggage.set_baggage(key, value, ctx)
        self._tokens.append(context.attach(ctx))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, run)


def tags(
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    agent: str | None = None,
    conversation_id: str | None = None,
    **labels: str,
) -> Tags:
    """Tag every LLM call in scope; semconv names where they exist, else ``otel_llm.tag.*``."""
    named = {
        "session_id": session_id,
        "user_id": user_id,
        "agent": agent,
        "conversation_id": conversation_id,
    }
    values = {_NAMED[k]: str(v) for k, v in named.items() if v is not None}
    values.update({TAG_PREFIX + k: str(v) for k, v in labels.items()})
    return Tags(values)


def attributes_from_baggage(
    allowed: frozenset[str], entries: Mapping[str, object] | None = None
) -> dict[str, str]:
    """The allowed baggage entries (of the current context unless given), as span attributes."""
    if entries is None:
        entries = baggage.get_all()
    if not entries:
        return {}
    # Baggage arrives from traffic too (the proxy continues the client's): capped like the rest.
    return {
        key[: sc.MAX_TEXT_LENGTH]: str(value)[: sc.MAX_TEXT_LENGTH]
        for key, value in entries.items()
        if key in allowed or key.startswith(TAG_PREFIX)
    }


def metric_tag_key(name: str) -> str:
    """The baggage key (and attribute) a metric tag names: ``team`` → ``otel_llm.tag.team``,
    ``agent`` → ``gen_ai.agent.name``; a dotted key is taken as it is."""
    name = name.strip()
    if name in _NAMED:
        return _NAMED[name]
    return name if "." in name else TAG_PREFIX + name


def allow_list(extra: Iterable[str] | None) -> frozenset[str]:
    return DEFAULT_KEYS | frozenset(extra or ())
