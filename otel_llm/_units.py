"""Time units: the one nanosecond ↔ second conversion.

Clocks (``perf_counter_ns``, span times, Ollama's ``*_duration`` fields) count integer
nanoseconds; attributes, metrics and assertions speak seconds.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NS_PER_S", "nanoseconds", "seconds"]

NS_PER_S: Final = 1_000_000_000


def seconds(ns: float) -> float:
    """Nanoseconds as seconds."""
    return ns / NS_PER_S


def nanoseconds(value: float) -> int:
    """Seconds as whole nanoseconds (rounded)."""
    return round(value * NS_PER_S)
