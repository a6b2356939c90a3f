"""OTLP JSON lines for traces: the exporter apps install (``OTEL_TRACES_EXPORTER=otlp_json_file``).

The format is the OTLP/JSON encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding)
of ``ExportTraceServiceRequest``, one request per line, as the OpenTelemetry Collector's
``file`` exporter and ``opentelemetry-exporter-otlp-json-file`` write it: camelCase
field names, trace and span ids as hex, enums as integers, 64-bit integers as strings.
It goes through the official protobuf models and ``google.protobuf.json_format``;
only the hex ids differ from protobuf's own JSON mapping (base64), and are converted.
Reading the files back (``otel-llm check``, tests) is ``otel_llm.testing.otlp_json``.

Writing from an app::

    from otel_llm.otlp_json import install
    install("traces.jsonl")        # before otel_llm.instrument()

or ``OTEL_TRACES_EXPORTER=otlp_json_file OTEL_LLM_TRACES_FILE=traces.jsonl
opentelemetry-instrument python app.py`` (an ``opentelemetry_traces_exporter`` entry point).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

from google.protobuf import json_format
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_llm.environment_variables import OTEL_LLM_TRACES_FILE

__all__ = [
    "DEFAULT_FILE",
    "OTEL_LLM_TRACES_FILE",
    "OTLPJsonFileSpanExporter",
    "convert_ids",
    "dumps",
    "encode",
    "install",
]

DEFAULT_FILE: Final = "otel-traces.jsonl"
"""Where ``OTLPJsonFileSpanExporter()`` writes without a path or ``OTEL_LLM_TRACES_FILE``."""

_ID_FIELDS: Final = frozenset({"traceId", "spanId", "parentSpanId"})


# -- writing -------------------------------------------------------------------------------


def convert_ids(node: Any, convert: Any) -> Any:
    """Apply ``convert`` to every trace/span id value, in place, anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = convert(value)
            else:
                convert_ids(value, convert)
    elif isinstance(node, list):
        for item in node:
            convert_ids(item, convert)
    return node


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def encode(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """SDK spans as one OTLP JSON ``ExportTraceServiceRequest`` (a dict)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = encode_spans(spans)
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    return dict(convert_ids(doc, _b64_to_hex))


def dumps(spans: Sequence[ReadableSpan]) -> str:
    """One compact JSON line (with its newline)."""
    return json.dumps(encode(spans), separators=(",", ":"), ensure_ascii=False) + "\n"


class OTLPJsonFileSpanExporter(SpanExporter):
    """Appends one OTLP JSON line per export to a file (or a text stream).

    Without ``path`` or ``stream`` it writes to ``$OTEL_LLM_TRACES_FILE`` or
    ``otel-traces.jsonl``. ``otel-llm check --spec SPEC FILE`` reads the result.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, stream: IO[str] | None = None
    ) -> None:
        if path is not None and stream is not None:
            raise ValueError("give a path or a stream, not both")
        self._lock = threading.Lock()
        self._owned = stream is None
        if stream is None:
            target = Path(
                path if path is not None else os.environ.get(OTEL_LLM_TRACES_FILE) or DEFAULT_FILE
            )
            if target.parent != Path():
                target.parent.mkdir(parents=True, exist_ok=True)
            stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in shutdown()
        self.path = getattr(stream, "name", None)
        self._stream: IO[str] = stream
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            line = dumps(spans)
            with self._lock:
                if self._closed:
                    return SpanExportResult.FAILURE
                self._stream.write(line)
                self._stream.flush()
        except Exception:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owned:
                self._stream.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        with self._lock:
            if not self._closed:
                self._stream.flush()
        return True


def install(path: str | os.PathLike[str] | None = None, *, batch: bool = False) -> Any:
    """Export every span to ``path`` as OTLP JSON lines; returns the TracerProvider used.

    Adds the exporter to the global SDK ``TracerProvider``, creating and installing one if
    the app has none. Call it before ``otel_llm.instrument()``. ``batch=False`` (default)
    writes each span when it ends, so nothing is lost if the process is killed.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    exporter = OTLPJsonFileSpanExporter(path)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider: Any = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        provider = TracerProvider(resource=Resource.create())
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        raise TypeError(
            f"the global TracerProvider ({type(provider).__name__}) takes no span processors"
        )
    add(processor)
    return provider
