"""OTLP JSON traces read back as ``SpanRecord``s, for ``otel-llm check`` and tests.

Reading accepts OTLP JSON lines (one ``ExportTraceServiceRequest`` per line, as
``OTLPJsonFileSpanExporter`` and the Collector's ``file`` exporter write), one JSON
document per file, and Jaeger's ``/api/v3`` responses (``{"result": {"resourceSpans":
[...]}}``), through the official protobuf models (``opentelemetry-proto``).

Writing lives in ``otel_llm.otlp_json`` (the core: apps install the exporter in
production); its names are re-exported here for code written against this module.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from otel_llm.otlp_json import (
    DEFAULT_FILE,
    OTEL_LLM_TRACES_FILE,
    OTLPJsonFileSpanExporter,
    convert_ids,
    dumps,
    encode,
    install,
)
from otel_llm.testing._model import EventRecord, SpanRecord

__all__ = [
    "DEFAULT_FILE",
    "OTEL_LLM_TRACES_FILE",
    "OTLPJsonError",
    "OTLPJsonFileSpanExporter",
    "decode",
    "dumps",
    "encode",
    "install",
    "read",
    "read_text",
]

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
    traces = convert_ids(json.loads(json.dumps(_traces_doc(doc, where))), _hex_to_b64)
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
