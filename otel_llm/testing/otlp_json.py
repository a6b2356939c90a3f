"""OTLP JSON for traces: write it from an app or a test, read it back for checks.

The format is the OTLP/JSON encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding)
of ``ExportTraceServiceRequest``, one request per line, as the OpenTelemetry Collector's
``file`` exporter and ``opentelemetry-exporter-otlp-json-file`` write it: camelCase
field names, trace and span ids as hex, enums as integers, 64-bit integers as strings.
Both directions go through the official protobuf models (``opentelemetry-proto``) and
``google.protobuf.json_format``; only the hex ids differ from protobuf's own JSON
mapping (base64), and are converted on the way in and out.

Reading also accepts one JSON document per file and Jaeger's ``/api/v3`` responses
(``{"result": {"resourceSpans": [...]}}``).

Writing from an app::

    from otel_llm.testing.otlp_json import install
    install("traces.jsonl")        # before otel_llm.instrument()

or ``OTEL_TRACES_EXPORTER=otlp_json_file OTEL_LLM_TRACES_FILE=traces.jsonl
opentelemetry-instrument python app.py`` (an ``opentelemetry_traces_exporter`` entry point).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, cast

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_llm.testing._model import EventRecord, SpanRecord

__all__ = [
    "OTEL_LLM_TRACES_FILE",
    "OTLPJsonError",
    "OTLPJsonFileSpanExporter",
    "decode",
    "encode",
    "install",
    "read",
    "read_text",
]

OTEL_LLM_TRACES_FILE: Final = "OTEL_LLM_TRACES_FILE"
"""Where ``OTLPJsonFileSpanExporter()`` without a path writes (default ``otel-traces.jsonl``)."""
DEFAULT_FILE: Final = "otel-traces.jsonl"

_ID_FIELDS: Final = frozenset({"traceId", "spanId", "parentSpanId"})
_KINDS: Final = {
    Span.SPAN_KIND_UNSPECIFIED: "INTERNAL",
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUS: Final = {0: "UNSET", 1: "OK", 2: "ERROR"}


class OTLPJsonError(ValueError):
    """The input is not OTLP JSON traces (the message says what it looks like instead)."""


# -- writing -------------------------------------------------------------------------------


def _convert_ids(node: Any, convert: Any) -> Any:
    """Apply ``convert`` to every trace/span id value, in place, anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = convert(value)
            else:
                _convert_ids(value, convert)
    elif isinstance(node, list):
        for item in node:
            _convert_ids(item, convert)
    return node


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def encode(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """SDK spans as one OTLP JSON ``ExportTraceServiceRequest`` (a dict)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = encode_spans(spans)
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    return dict(_convert_ids(doc, _b64_to_hex))


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


# -- reading -------------------------------------------------------------------------------


def _hex_to_b64(value: str) -> str:
    """Hex ids (the OTLP/JSON rule) to protobuf's base64; base64 ids pass unchanged."""
    if len(value) in (16, 32):
        try:
            return base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            pass
    if value and len(value) not in (12, 24):
        raise OTLPJsonError(f"not a trace or span id: {value!r}")
    return value


def _any(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_any(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(items: Sequence[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in items}


def _traces_doc(doc: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise OTLPJsonError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if "result" in doc and isinstance(doc["result"], Mapping):  # Jaeger /api/v3
        doc = doc["result"]
    if "resourceSpans" in doc or "resource_spans" in doc or not doc:
        return cast(Mapping[str, Any], doc)
    if "error" in doc:
        raise OTLPJsonError(f"{where}: an error response, not traces: {json.dumps(doc['error'])}")
    if "data" in doc:
        raise OTLPJsonError(
            f"{where}: this is Jaeger's v1 JSON (/api/traces); use the OTLP API /api/v3/traces"
        )
    if "resourceMetrics" in doc or "resourceLogs" in doc:
        raise OTLPJsonError(f"{where}: OTLP metrics or logs, not traces")
    raise OTLPJsonError(f"{where}: no resourceSpans (keys: {', '.join(sorted(doc))})")


def decode(doc: Any, where: str = "input") -> list[SpanRecord]:
    """``SpanRecord``s from one OTLP JSON traces document (or a Jaeger v3 response)."""
    traces = _convert_ids(json.loads(json.dumps(_traces_doc(doc, where))), _hex_to_b64)
    message = TracesData()
    try:
        json_format.ParseDict(traces, message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error) as exc:
        raise OTLPJsonError(f"{where}: not OTLP JSON: {exc}") from exc
    records = []
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(
                    SpanRecord(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() or None,
                        kind=_KINDS.get(span.kind, "INTERNAL"),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano or span.start_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        status=_STATUS.get(span.status.code, "UNSET"),
                        status_message=span.status.message,
                        events=tuple(
                            EventRecord(e.name, e.time_unix_nano, _attributes(e.attributes))
                            for e in span.events
                        ),
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return records


def _documents(text: str, where: str) -> Iterator[tuple[Any, str]]:
    stripped = text.strip()
    if not stripped:
        return
    try:
        yield json.loads(stripped), where
        return
    except json.JSONDecodeError:
        pass
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line), f"{where}:{number}"
            except json.JSONDecodeError as exc:
                raise OTLPJsonError(f"{where}:{number}: not JSON: {exc.msg}") from exc


def read_text(text: str, where: str = "input") -> list[SpanRecord]:
    """Spans from JSON lines (one request per line) or one JSON document."""
    records: list[SpanRecord] = []
    for doc, place in _documents(text, where):
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                records.extend(decode(item, f"{place}[{i}]"))
        else:
            records.extend(decode(doc, place))
    return records


def read(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Spans from an OTLP JSON file (collector ``file`` exporter, JSON-lines, Jaeger v3)."""
    return read_text(Path(path).read_text(encoding="utf-8"), str(path))
