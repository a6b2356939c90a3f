"""Our code never raises into the app: every hook body runs under ``guarded``.

A failure is logged once per call site (with its traceback) and then counted
silently, so a bug in otel_llm costs the app one log line, not a crash or a
flood.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["failures", "guarded", "report"]

_logger = logging.getLogger("otel_llm")
_seen: set[str] = set()
failures: dict[str, int] = {}

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D")


def report(where: str, exc: BaseException) -> None:
    """Record one internal failure; log it the first time ``where`` fails."""
    failures[where] = failures.get(where, 0) + 1
    if where not in _seen:
        _seen.add(where)
        _logger.warning(
            "otel_llm: internal error in %s (the call goes on; further errors here are counted,"
            " not logged)",
            where,
            exc_info=exc,
        )


def guarded(default: D) -> Callable[[Callable[P, R]], Callable[P, R | D]]:
    """Decorate a hook so an ``Exception`` in it is reported and ``default`` returned."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R | D]:
        where = f"{fn.__module__}.{fn.__qualname__}"

        def inner(*args: P.args, **kwargs: P.kwargs) -> R | D:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report(where, exc)
                return default

        inner.__wrapped__ = fn  # type: ignore[attr-defined]
        inner.__doc__ = fn.__doc__
        inner.__name__ = fn.__name__
        inner.__qualname__ = fn.__qualname__
        return inner

    return wrap
