"""The front-ends beside httpx/httpx2: each patches its library if it is installed.

requests and aiohttp always; DSPy's vendored transport only in the versions tested.

One line in ``instrument()``/``uninstrument()`` reaches them all; a library that
is not installed costs one failed import at ``instrument()``.
"""

from __future__ import annotations

from otel_llm import _patch_aiohttp, _patch_dspy, _patch_requests

__all__ = ["patch_all", "unpatch_all"]


def patch_all() -> None:
    """Patch requests and aiohttp where installed (idempotent)."""
    _patch_requests.patch()
    _patch_aiohttp.patch()
    _patch_dspy.patch()


def unpatch_all() -> None:
    """Put back every original these front-ends replaced."""
    _patch_requests.unpatch()
    _patch_aiohttp.unpatch()
    _patch_dspy.unpatch()
