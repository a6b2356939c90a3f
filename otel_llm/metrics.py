"""GenAI metrics for finished calls (filled in by the metrics work; see issue 3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_llm._config import Settings
from otel_llm._types import LLMCall

__all__ = ["build_sinks"]


def build_sinks(options: Mapping[str, Any], settings: Settings) -> list[Callable[[LLMCall], None]]:
    """The per-call sinks (metrics recorder, log event) that ``instrument()`` options ask for."""
    return []
