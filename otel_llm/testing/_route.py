"""Send a test's Ollama traffic to the mock, whenever the client was built.

Setting ``OLLAMA_HOST`` reaches only clients built afterwards. Ollama's module-level
functions (``ollama.chat``, ``ollama.embed`` ...) are bound methods of a client built
when ``ollama`` was imported, and apps often build their client at import time too.
``route_to(url)`` reaches all of them, and undoes everything on exit:

1. **ollama's default client**: the httpx client behind ``ollama._client`` (which
   ``ollama.chat`` and friends are bound to) gets the mock as its ``base_url``.
2. **openai's module client** (``openai.chat.completions.create``): the module setting
   ``openai.base_url`` points at the mock's ``/v1``.
3. **Any other httpx (or httpx2) client addressed to Ollama's default address** (port 11434 on
   127.0.0.1, localhost, 0.0.0.0 or ::1), e.g. ``ollama.Client()`` or
   ``OpenAI(base_url="http://localhost:11434/v1")`` built before the test: httpx's
   default transports hand such requests to the mock instead. The app's ``Request``
   object is not changed (the transport sends a copy), so ``response.request.url`` is
   still the address the app used. Clients with their own transport
   (``httpx.MockTransport``) and every other address are left alone.

Only modules already imported are touched: a module imported during the test builds its
clients from the environment, which the fixture sets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Final

import httpx

from otel_llm import environment_variables as env

__all__ = ["DEFAULT_HOSTS", "DEFAULT_PORT", "route_to"]

_HTTP_MODULES: Final = ("httpx", "httpx2")  # ollama uses httpx; openai >= 3 uses httpx2
DEFAULT_PORT: Final = 11434
DEFAULT_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1"})
"""Hosts that, on ``DEFAULT_PORT``, mean "the local Ollama" (``ollama``'s default is the first)."""


def _is_default(url: Any) -> bool:
    return url.scheme == "http" and url.port == DEFAULT_PORT and url.host in DEFAULT_HOSTS


def _rerouted(module: Any, request: Any, port: int) -> Any:
    if not _is_default(request.url):
        return request
    return module.Request(  # a copy: the app keeps its own Request (response.request)
        request.method,
        request.url.copy_with(host="127.0.0.1", port=port),
        headers=request.headers,
        stream=request.stream,
        extensions=request.extensions,
    )


@contextmanager
def _transports(module: Any, port: int) -> Iterator[None]:
    """``module``'s default transports (httpx or httpx2) send default-address requests to port."""
    sync_cls, async_cls = module.HTTPTransport, module.AsyncHTTPTransport
    send, asend = sync_cls.handle_request, async_cls.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        return send(self, _rerouted(module, request, port))

    async def handle_async_request(self: Any, request: Any) -> Any:
        return await asend(self, _rerouted(module, request, port))

    sync_cls.handle_request = handle_request
    async_cls.handle_async_request = handle_async_request
    try:
        yield
    finally:
        sync_cls.handle_request = send
        async_cls.handle_async_request = asend


@contextmanager
def _ollama_default_client(url: str) -> Iterator[None]:
    """``ollama``'s module-level client talks to ``url``; afterwards, to where it did before.

    If ``ollama`` is first imported during the test, its client was built from the
    mock's ``OLLAMA_HOST``: it is sent back to the address the environment gave before.
    """
    before = os.environ.get(env.OLLAMA_HOST)
    inner = _ollama_http_client()
    saved = None if inner is None else inner.base_url
    if inner is not None:
        inner.base_url = httpx.URL(url)
    try:
        yield
    finally:
        if inner is not None and saved is not None:
            inner.base_url = saved
        else:
            late = _ollama_http_client()
            parse = getattr(sys.modules.get("ollama._client"), "_parse_host", None)
            if late is not None and callable(parse):
                late.base_url = httpx.URL(parse(before))


def _ollama_http_client() -> httpx.Client | None:
    module: Any = sys.modules.get("ollama")
    inner = getattr(getattr(module, "_client", None), "_client", None)
    return inner if isinstance(inner, httpx.Client) else None


@contextmanager
def _openai_module_client(url: str) -> Iterator[None]:
    """``openai``'s module client uses ``url``; one built during the test is dropped after."""
    module: Any = sys.modules.get("openai")
    built = module is not None and getattr(module, "_client", None) is not None
    if module is not None:
        saved = module.base_url
        module.base_url = url
    try:
        yield
    finally:
        if module is not None:
            module.base_url = saved
        late: Any = sys.modules.get("openai")
        reset = getattr(late, "_reset_client", None)
        if not built and callable(reset):
            reset()  # it read the mock's OPENAI_BASE_URL when it was built


@contextmanager
def route_to(url: str, *, openai: bool = True, transports: bool = True) -> Iterator[None]:
    """Reach the mock at ``url`` from clients built before now (see the module docstring)."""
    port = httpx.URL(url).port
    if port is None:
        raise ValueError(f"the mock's URL needs a port: {url!r}")
    with ExitStack() as stack:
        stack.enter_context(_ollama_default_client(url))
        if openai:
            stack.enter_context(_openai_module_client(f"{url}/v1/"))
        if transports:
            for name in _HTTP_MODULES:  # a client built before now imported its module
                if name in sys.modules:
                    stack.enter_context(_transports(sys.modules[name], port))
        yield
