"""Did Ollama silently cut the prompt? The context window a call had, and whether it was full.

Ollama fits a prompt that is too long for the context window by dropping tokens (the
runner keeps ``num_keep`` tokens and discards the start of the rest) and carries on; the
answer just gets worse. The final record's ``prompt_eval_count`` is the number of prompt
tokens the model actually saw, so a prompt that reached the window was, as far as the
client can tell, cut. The window, in order of precedence (``ollama.context.source``):

1. ``request``: ``options.num_ctx`` sent with the call;
2. ``modelfile``: a ``num_ctx`` parameter of the model (``/api/show`` ``parameters``);
3. ``loaded``: the window the loaded model runs with (``/api/ps`` ``context_length``),
   which reflects the server's default (``OLLAMA_CONTEXT_LENGTH``, else chosen from VRAM
   by recent servers);
4. ``default``: ``DEFAULT_NUM_CTX`` (4096, Ollama's default on a machine with under
   24 GiB of VRAM) when the server told us nothing;

each capped, as Ollama caps it, by the model's trained length (``/api/show``
``model_info["<arch>.context_length"]``).

What the server says is learned once per (server, model), off the request path: the
first finished call of a model queues a lookup on one daemon thread and carries no
context attributes (unless it sent ``num_ctx``); later calls read the cache. The lookup
runs under ``suppress_instrumentation``: it is never a span, never recursion. The cache
is bounded; a failed lookup is remembered for ``RETRY_AFTER`` seconds (the calls in
between use the default), a successful one for ``REFRESH_AFTER`` seconds (then looked
up again in the background while the old answer is still used).

Limits (docs/attributes.md): a prompt-cache hit on servers that drop cached tokens from
``prompt_eval_count`` looks smaller than it was; chat history the server trims by whole
messages leaves the count below the window (high utilisation, no flag); embeddings sum
counts over inputs and are not judged; a server mounted under a path prefix is not
looked up (the default applies).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_llm import semconv as sc
from otel_llm._ollama_http import request_json
from otel_llm._types import LLMCall
from otel_llm.adapters.ollama import PS_PATH
from otel_llm.adapters.ollama_models import SHOW_PATH, ModelFacts, loaded_context, parse_show

__all__ = [
    "DEFAULT_NUM_CTX",
    "ContextWindows",
    "Window",
    "annotate",
    "windows",
]

_logger = logging.getLogger("otel_llm")

DEFAULT_NUM_CTX: Final = 4096
"""Ollama's default ``num_ctx`` (under 24 GiB of VRAM; 32k/256k above, docs/attributes.md)."""
RETRY_AFTER: Final = 30.0
REFRESH_AFTER: Final = 600.0
MAX_ENTRIES: Final = 256
TIMEOUT: Final = 2.0
_JUDGED: Final = frozenset({sc.CHAT, sc.TEXT_COMPLETION})


@dataclass(frozen=True, slots=True)
class Window:
    """The window one call had, and where that number came from."""

    size: int
    source: str


@dataclass(slots=True)
class _Entry:
    facts: ModelFacts | None  # None: the lookup is still running
    expires: float


class ContextWindows:
    """The bounded (server, model) → ``ModelFacts`` cache and its one background worker."""

    def __init__(self, max_entries: int = MAX_ENTRIES, timeout: float = TIMEOUT) -> None:
        self._timeout = timeout
        self._entries: OrderedDict[tuple[str, int | None, str], _Entry] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, int | None, str]] = queue.Queue(maxsize=64)
        self._worker: threading.Thread | None = None

    def window(self, call: LLMCall, lookup: bool = True) -> Window | None:
        """The window of ``call``; None while its model's facts are still being learned.

        ``lookup=False``: only the request's ``num_ctx``, nothing asked of the server.
        """
        model = call.request_model
        requested = call.num_ctx
        if not lookup:
            return Window(requested, "request") if requested else None
        if not model:
            return Window(requested, "request") if requested else None
        facts = self._facts((call.server_address, call.server_port, model))
        if requested:
            return Window(_cap(requested, facts), "request")
        if facts is None:
            return None
        if facts.num_ctx:
            return Window(_cap(facts.num_ctx, facts), "modelfile")
        if facts.loaded_context:
            return Window(_cap(facts.loaded_context, facts), "loaded")
        return Window(_cap(DEFAULT_NUM_CTX, facts), "default")

    def _facts(self, key: tuple[str, int | None, str]) -> ModelFacts | None:
        now = time.monotonic()
        entry = self._entries.get(key)  # the common case, a fresh answer, takes no lock:
        if entry is not None and entry.expires > now:  # each step is one atomic C call
            try:  # noqa: SIM105 (contextlib.suppress costs an object per call here)
                self._entries.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread
                pass
            return entry.facts
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if entry.expires > now or entry.facts is None:
                    return entry.facts
                entry.expires = now + REFRESH_AFTER  # stale: refresh once, keep answering
            else:
                self._entries[key] = _Entry(None, now + REFRESH_AFTER)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
            self._schedule(key)
            return entry.facts if entry is not None else None

    def _schedule(self, key: tuple[str, int | None, str]) -> None:
        try:
            self._queue.put_nowait(key)
        except queue.Full:  # a burst of new models: forget this one, asked again later
            self._entries.pop(key, None)
            return
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._work, name="otel_llm-context-window", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        while True:
            try:
                key = self._queue.get(timeout=5.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            facts = self._look_up(self._timeout, *key)
            with self._lock:
                if key in self._entries:
                    ttl = REFRESH_AFTER if facts is not None else RETRY_AFTER
                    self._entries[key] = _Entry(facts or ModelFacts(), time.monotonic() + ttl)

    @staticmethod
    def _look_up(timeout: float, address: str, port: int | None, model: str) -> ModelFacts | None:
        """``/api/show`` (and ``/api/ps`` for the loaded window); None if either failed."""
        try:
            with suppress_instrumentation():
                facts = parse_show(
                    request_json(address, port, SHOW_PATH, {"model": model}, timeout=timeout)
                )
                ps = request_json(address, port, PS_PATH, timeout=timeout)
            return facts.with_loaded(loaded_context(ps, model))
        except Exception as exc:  # down, slow, not Ollama, unknown model: the default applies
            _logger.debug(
                "otel_llm: context lookup of %s on %s:%s failed: %r", model, address, port, exc
            )
            return None

    def learned(self, address: str, port: int | None, model: str) -> ModelFacts | None:
        """What is known of a model now (tests, diagnostics); never starts a lookup."""
        with self._lock:
            entry = self._entries.get((address, port, model))
            return entry.facts if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _cap(size: int, facts: ModelFacts | None) -> int:
    trained = facts.trained_context if facts is not None else None
    return min(size, trained) if trained else size


windows: Final = ContextWindows()
"""The process's cache: servers and models outlive any one ``instrument()``."""


def annotate(call: LLMCall) -> None:
    """Set ``context_size``/``context_source`` of a finished Ollama chat or completion."""
    if (
        call.input_tokens is None
        or call.operation not in _JUDGED
        or (call.provider_confirmed or call.provider) != "ollama"
    ):
        return
    window = windows.window(call, call.settings.context_lookup)
    if window is not None and window.size > 0:
        call.context_size = window.size
        call.context_source = window.source
