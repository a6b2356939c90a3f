"""Optional client auth: ``Authorization: Bearer <token>`` against a fixed set of tokens.

Tokens come from ``--token-file`` / ``OTEL_LLM_PROXY_TOKEN_FILE`` (one a line) and
``OTEL_LLM_PROXY_TOKENS`` (comma-separated). Every configured token is compared with
``hmac.compare_digest`` (no early exit), so timing says nothing about which one nearly
matched. Token values live only here: never in a log line, a span or an error body.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Final

__all__ = ["CHALLENGE", "BearerAuth"]

CHALLENGE: Final = (b"www-authenticate", b'Bearer realm="otel-llm proxy"')
_PREFIX: Final = b"bearer "


class BearerAuth:
    """Checks one request's headers; ``enabled`` is False when no token is configured."""

    __slots__ = ("_tokens",)

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(t.encode() for t in tokens if t)

    def __repr__(self) -> str:
        return f"BearerAuth(<{len(self._tokens)} tokens>)"

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def allows(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """True when auth is off, or one ``Authorization`` header carries a known token."""
        if not self._tokens:
            return True
        presented = None
        for name, value in headers:
            if name == b"authorization":
                if presented is not None:
                    return False  # two Authorization headers: ambiguous, refuse
                presented = value
        if presented is None or presented[:7].lower() != _PREFIX:
            return False
        candidate = presented[7:].strip()
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(candidate, token)
        return ok
