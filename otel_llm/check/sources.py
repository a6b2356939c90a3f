"""Where ``otel-llm check`` reads spans: OTLP JSON files, or Jaeger's ``/api/v3`` HTTP API.

Jaeger v2 answers ``GET /api/v3/traces/{trace_id}`` and ``GET /api/v3/traces?query...``
with OTLP JSON wrapped as ``{"result": {"resourceSpans": [...]}}`` (its HTTP gateway
marshals ``api_v3.GRPCGatewayWrapper{Result: TracesData}`` through pdata's JSON
marshaler), and errors as ``{"error": {"httpCode": 404, "message": "No traces found"}}``
with that HTTP status. The search needs ``query.service_name``,
``query.start_time_min`` and ``query.start_time_max`` (RFC 3339); the snake_case names
are the ones every v2 release accepts (newer ones prefer camelCase aliases).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import cast

from otel_llm.testing import otlp_json
from otel_llm.testing._model import SpanRecord

__all__ = ["SourceError", "dedupe", "from_files", "from_jaeger", "parse_duration"]

_SUFFIXES = (".json", ".jsonl", ".ndjson")


class SourceError(Exception):
    """Spans could not be read (a missing file, Jaeger unreachable, not OTLP JSON)."""


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` → seconds."""
    text = text.strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for suffix in ("ms", "s", "m", "h", "d"):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], units[suffix]
            break
    else:
        number, scale = text, 1
    try:
        value = float(number) * scale
    except ValueError:
        raise SourceError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h)") from None
    if value <= 0:
        raise SourceError(f"the duration must be positive: {text!r}")
    return value


def _files(paths: Iterable[str]) -> list[Path]:
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file()
            )
            if not found:
                raise SourceError(f"{path}: no .json/.jsonl files in this directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise SourceError(f"{path}: no such file")
    return out


def from_files(paths: Sequence[str]) -> list[SpanRecord]:
    """Spans from OTLP JSON files, directories of them, or ``-`` (standard input)."""
    records: list[SpanRecord] = []
    try:
        if "-" in paths:
            records.extend(otlp_json.read_text(sys.stdin.read(), "<stdin>"))
        for path in _files(p for p in paths if p != "-"):
            records.extend(otlp_json.read(path))
    except OSError as exc:
        raise SourceError(f"{exc.filename}: {exc.strerror}") from exc
    except otlp_json.OTLPJsonError as exc:
        raise SourceError(str(exc)) from exc
    return records


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _get(url: str, timeout: float) -> object | None:
    """The JSON body, or None for Jaeger's 404 (no such trace / no traces found)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        if exc.code == 404:
            return None
        try:
            message = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = detail[:300]
        raise SourceError(f"Jaeger answered {exc.code} for {url}: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"cannot reach Jaeger at {url}: {reason}") from exc
    try:
        return cast(object, json.loads(body))
    except ValueError as exc:
        raise SourceError(f"{url}: the answer is not JSON") from exc


def from_jaeger(
    base_url: str,
    *,
    service: str | None = None,
    operation: str | None = None,
    since: float = 3600.0,
    limit: int = 20,
    trace_ids: Sequence[str] = (),
    timeout: float = 10.0,
    now: datetime | None = None,
) -> list[SpanRecord]:
    """Spans of the given traces, or of a search (``service`` in the last ``since`` seconds)."""
    base = base_url.rstrip("/")
    records: list[SpanRecord] = []
    try:
        if trace_ids:
            for trace_id in trace_ids:
                url = f"{base}/api/v3/traces/{urllib.parse.quote(trace_id)}"
                doc = _get(url, timeout)
                if doc is None:
                    raise SourceError(f"trace {trace_id} not found in Jaeger ({url})")
                records.extend(otlp_json.decode(doc, url))
            return records
        if not service:
            raise SourceError("a Jaeger search needs --service (or give --trace-id)")
        end = now or datetime.now(timezone.utc)
        params = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(end - timedelta(seconds=since)),
            "query.start_time_max": _rfc3339(end),
            "query.num_traces": str(limit),
        }
        if operation:
            params["query.operation_name"] = operation
        url = f"{base}/api/v3/traces?{urllib.parse.urlencode(params)}"
        doc = _get(url, timeout)
        return [] if doc is None else otlp_json.decode(doc, url)
    except otlp_json.OTLPJsonError as exc:
        raise SourceError(str(exc)) from exc


def dedupe(records: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Each (trace id, span id) once: exports and queries may overlap."""
    seen: dict[tuple[str, str], SpanRecord] = {}
    for record in records:
        seen.setdefault((record.trace_id, record.span_id), record)
    return list(seen.values())
