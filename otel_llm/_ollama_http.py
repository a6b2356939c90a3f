"""Our own few requests to an Ollama server (``/api/show``, ``/api/ps``), off the app's path.

The stdlib's ``http.client``: no patched client is involved (so no span, no recursion),
and no TLS context is built for the plain-HTTP servers Ollama almost always is; an
``https`` server gets the default context, built on first use.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

__all__ = ["OllamaHTTPError", "request_json"]

_tls: list[ssl.SSLContext] = []


class OllamaHTTPError(Exception):
    """The server answered with an HTTP error status."""


def request_json(
    address: str, port: int | None, path: str, body: Any = None, *, timeout: float
) -> Any:
    """``GET path`` (or ``POST`` with a JSON ``body``) and the decoded JSON answer."""
    secure = port == 443
    if secure:
        if not _tls:
            _tls.append(ssl.create_default_context())
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            address, port, timeout=timeout, context=_tls[0]
        )
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request(
                "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
        response = conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise OllamaHTTPError(f"{response.status} from {path}")
        return json.loads(data)
    finally:
        conn.close()
