"""Deterministic content: tokens, tool-call ids, embeddings and model metadata.

The rules are listed in the package docstring (``otel_llm.testing.mock_ollama``).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(r"\s*\S+")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=512)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text))


def _count(value: Any) -> int:
    """Tokens of a prompt text: a string, or a list of ``{"type":"text","text":...}`` parts."""
    if isinstance(value, str):
        return len(_tokens(value))
    if isinstance(value, list):
        return sum(_count(part.get("text")) for part in value if isinstance(part, dict))
    return 0


@lru_cache(maxsize=256)
def _call_id(index: int, name: str) -> str:
    number = int.from_bytes(hashlib.sha1(f"{index}:{name}".encode()).digest()[:8], "big")
    digits = []
    for _ in range(8):
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
    return "call_" + "".join(digits)


@lru_cache(maxsize=1024)
def _vector(text: str, dim: int) -> tuple[float, ...]:
    """Six significant digits: float32's shortest form equals Python's repr of the value."""
    raw = hashlib.shake_128(text.encode("utf-8", "surrogatepass")).digest(4 * dim)
    values = []
    for (word,) in struct.iter_unpack("<I", raw):
        value = float(f"{0.001 + (word >> 1) / 2**31 * 0.099:.6g}")
        values.append(-value if word & 1 else value)
    return tuple(values)


def _widen(values: Sequence[float]) -> list[float]:
    """float32 -> float64, as Ollama's legacy endpoint reports them."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _full_name(model: str) -> str:
    return model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"


def _aliases(model: str) -> tuple[str, ...]:
    """``llama3.2`` and ``llama3.2:latest`` name the same model."""
    if model.endswith(":latest"):
        return model, model[: -len(":latest")]
    return (model, model + ":latest") if model != _full_name(model) else (model,)


def _family(model: str) -> str:
    if "minilm" in model or "embed" in model:
        return "bert"
    return "qwen3" if model.startswith("qwen3") else "llama"


def _details(model: str) -> dict[str, Any]:
    family = _family(model)
    size, quant = {"bert": ("23M", "F16"), "qwen3": ("8.2B", "Q4_K_M")}.get(
        family, ("3.2B", "Q4_K_M")
    )
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": size,
        "quantization_level": quant,
    }


def _digest(model: str) -> str:
    return hashlib.sha256(_full_name(model).encode()).hexdigest()


def _size(model: str) -> int:
    return 1_000_000_000 + int(_digest(model)[:6], 16)


def _owner(model: str) -> str:
    parts = model.split("/")
    return parts[-2] if len(parts) > 1 else "library"
