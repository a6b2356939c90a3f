"""Which headers cross the proxy (RFC 9110 §7.6.1): end-to-end ones unchanged, hop-by-hop ones not.

A hop-by-hop header describes one connection, so it stops here: the fixed set below
plus every name the message's own ``Connection`` header lists. Both directions also drop
what the proxy re-derives for its own hop: ``Host`` (the upstream's) on the way in and
``Expect`` (100-continue was answered to the client already). ``Via`` is appended to
requests, as a gateway must (RFC 9110 §7.6.3). Everything else, including the caller's
``traceparent``, ``baggage`` and ``Authorization`` (unless the proxy itself checks
bearer tokens), passes byte for byte in its original order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["HOP_BY_HOP", "VIA", "request_headers", "response_headers"]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",  # non-standard, still sent by some clients
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Connection-specific fields (RFC 9110 §7.6.1), never forwarded."""

_REQUEST_ONLY: Final = frozenset({b"host", b"expect"})
VIA: Final = b"otel-llm"
"""Our pseudonym in ``Via`` (``1.1 otel-llm``)."""

Headers = list[tuple[bytes, bytes]]


def _connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Names listed in ``Connection`` (``Connection: close, X-Foo`` → ``{close, x-foo}``)."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(named)


def _filter(headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes]) -> Headers:
    items = list(headers)
    named = _connection_named(items)
    if named:
        drop = drop | named
    return [(name, value) for name, value in items if name.lower() not in drop]


def request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    http_version: str = "1.1",
    strip_authorization: bool = False,
) -> Headers:
    """The client's headers as sent upstream: end-to-end only, plus our ``Via`` hop."""
    drop = HOP_BY_HOP | _REQUEST_ONLY
    if strip_authorization:
        drop = drop | {b"authorization"}  # the proxy's own token is not the upstream's business
    out = _filter(headers, drop)
    out.append((b"via", http_version.encode("ascii", "replace") + b" " + VIA))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream's headers as sent to the client: end-to-end only.

    ``Content-Length`` stays (the body is forwarded byte for byte); without it the
    server frames the body with chunked encoding, as the upstream did.
    """
    return _filter(headers, HOP_BY_HOP)
