"""Ollama's model operations (``/api/pull``, ``push``, ``create``, ``copy``, ``delete``,
``show``): request fields, progress NDJSON, and what ``/api/show`` tells about a model.

These are not GenAI inference: ``_model_ops`` gives them spans of their own. Progress
lines are ``{"status","digest"?,"total"?,"completed"?}``; a layer is a digest, its
``completed`` only grows, the last line is ``{"status":"success"}`` or an ``{"error"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from otel_llm import semconv as sc
from otel_llm._framing import LineFramer
from otel_llm._types import LLMCall, Parser, Routes, Steady
from otel_llm.adapters._common import ErrorBody, JsonBody, as_int, loads, stream_incomplete

__all__ = [
    "DELETE_ROUTES",
    "ENDPOINTS",
    "ROUTES",
    "SHOW_PATH",
    "ModelFacts",
    "ModelsAdapter",
    "Progress",
    "adapter",
    "loaded_context",
    "parse_show",
]

SHOW_PATH: Final = "/api/show"
"""Also asked by ``_context_window`` for a model's context window."""

ENDPOINTS: Final[Mapping[str, str]] = {
    "/api/pull": sc.PULL,
    "/api/push": sc.PUSH,
    "/api/create": sc.CREATE,
    "/api/copy": sc.COPY,
    SHOW_PATH: sc.SHOW,
}
_STREAMED: Final = frozenset({sc.PULL, sc.PUSH, sc.CREATE})
_STATUS_MAX: Final = 128


class ModelsAdapter:
    """The model-management half of the native API: one instance serves every call."""

    name = "ollama_models"

    def read_request(self, call: LLMCall, body: Mapping[str, Any]) -> None:
        model = body.get("model") or body.get("name")  # ``name``: older clients
        if call.operation == sc.COPY:
            model = body.get("source")
            destination = body.get("destination")
            if isinstance(destination, str) and destination:
                call.op_destination = destination[:256]
        if isinstance(model, str) and model:
            call.request_model = model[:256]
        if call.operation in _STREAMED:
            call.stream = body.get("stream", True) is not False

    def parser(self, call: LLMCall, content_type: str) -> Parser:
        if call.status_code >= 400:
            return ErrorBody(call)
        if "ndjson" in content_type:
            return Progress(call)
        return JsonBody(call, _read_body, _ignore_large)


adapter: Final = ModelsAdapter()
ROUTES: Final = Routes(adapter, ENDPOINTS, prefix="/api/", provider="ollama")
DELETE_ROUTES: Final = Routes(
    adapter, {"/api/delete": sc.DELETE}, prefix="/api/", provider="ollama", method="DELETE"
)
"""``DELETE /api/delete``: the one model operation that is not a POST."""


class Progress:
    """Streamed progress of a pull, push or create: bytes per layer, last status, errors."""

    __slots__ = ("_framer", "_layers", "call", "final")

    steady: Steady | None = None  # every progress line is read

    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self._framer = LineFramer()
        self._layers: dict[str, tuple[int, int]] = {}  # digest -> (total, completed)
        self.final = False

    def feed(self, data: bytes) -> bool:
        region = self._framer.feed(data)
        if not region:
            return False
        return any(line.strip() and self._read_line(line) for line in region.split(b"\n"))

    def _read_line(self, line: bytes) -> bool:
        call = self.call
        call.chunks += 1
        record = loads(line)
        if not isinstance(record, dict):
            return False
        error = record.get("error")
        if error is not None:
            call.error_type = sc.ERROR_STREAM_ERROR
            call.error_message = str(error)[:512]
            self.final = True
            return True
        _status(call, record)
        digest = record.get("digest")
        if isinstance(digest, str) and digest:
            total = as_int(record.get("total")) or 0
            completed = as_int(record.get("completed")) or 0
            seen_total, seen_completed = self._layers.get(digest, (0, 0))
            self._layers[digest] = (max(total, seen_total), max(completed, seen_completed))
            call.op_layers = len(self._layers)
            call.op_total_bytes = sum(t for t, _ in self._layers.values())
            call.op_completed_bytes = sum(c for _, c in self._layers.values())
        if call.op_status == "success":
            self.final = True
            return True
        return False

    def close(self) -> None:
        if self.final:
            return
        rest = self._framer.flush()
        if rest.strip() and self._read_line(rest):
            return
        stream_incomplete(self.call, "progress ended without success")


def _status(call: LLMCall, record: Mapping[str, Any]) -> None:
    status = record.get("status")
    if isinstance(status, str) and status:
        call.op_status = status[:_STATUS_MAX]


def _read_body(call: LLMCall, obj: Any) -> None:
    """An unstreamed answer: ``{"status":"success"}``, ``/api/show``'s model, or an error."""
    if not isinstance(obj, Mapping):
        return
    if "error" in obj:
        call.error_type = sc.ERROR_STREAM_ERROR
        call.error_message = str(obj["error"])[:512]
        return
    call.chunks = 1
    _status(call, obj)


def _ignore_large(call: LLMCall, head: bytes, tail: bytes) -> None:
    """A huge ``/api/show`` (``verbose`` tensors): nothing in it is recorded."""


# -- what /api/show and /api/ps tell about a model (for otel_llm._context_window) ----------


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """A model's context facts on one server; None where the server did not say."""

    num_ctx: int | None = None  # a ``num_ctx`` parameter in its Modelfile
    trained_context: int | None = None  # model_info ``<arch>.context_length``
    loaded_context: int | None = None  # ``/api/ps`` ``context_length`` while loaded

    def with_loaded(self, loaded: int | None) -> ModelFacts:
        return replace(self, loaded_context=loaded)


def parse_show(body: Any) -> ModelFacts:
    """``num_ctx`` from ``parameters`` (``"num_ctx   8192\\nstop ..."``), trained length."""
    if not isinstance(body, dict):
        return ModelFacts()
    num_ctx = None
    parameters = body.get("parameters")
    if isinstance(parameters, str):
        for line in parameters.splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "num_ctx" and value.strip().isdigit():
                num_ctx = int(value.strip())
    trained = None
    info = body.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if isinstance(key, str) and key.endswith(".context_length"):
                trained = as_int(value)
                break
    return ModelFacts(num_ctx=num_ctx or None, trained_context=trained or None)


def _tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def loaded_context(body: Any, model: str) -> int | None:
    """The ``context_length`` ``/api/ps`` reports for ``model`` (``:latest`` optional)."""
    models = body.get("models") if isinstance(body, dict) else None
    wanted = _tagged(model)
    for item in models if isinstance(models, list) else ():
        if not isinstance(item, dict):
            continue
        name = item.get("model") or item.get("name")
        if isinstance(name, str) and _tagged(name) == wanted:
            value = as_int(item.get("context_length"))
            return value if value else None
    return None
