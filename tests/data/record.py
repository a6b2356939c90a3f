"""Re-record the exported-trace fixtures of this folder (see README.md). Not run by the tests.

# opentelemetry-exporter-otlp-json-file 0.66b1 pins opentelemetry-sdk 1.45.1, so it
# lives in its own venv (with otel_llm's deps) and sees this checkout via PYTHONPATH
# (JSONFILE_VENV is that venv's directory):
PYTHONPATH=. "$JSONFILE_VENV"/bin/python tests/data/record.py json-file
.venv/bin/python tests/data/record.py jaeger
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")

import sample_app  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

import otel_llm  # noqa: E402
from otel_llm.testing.mock_ollama import MockOllama  # noqa: E402

RESOURCE = Resource.create({"service.name": "sample-app"})


def _run(provider: TracerProvider) -> None:
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    with MockOllama.from_file(HERE / "scenarios.yaml") as mock:
        os.environ["OLLAMA_HOST"] = mock.host
        otel_llm.instrument(tracer_provider=provider, metrics=False)
        sample_app.run(mock.url)
        otel_llm.uninstrument()
    provider.shutdown()


def json_file() -> None:
    """The output of opentelemetry-exporter-otlp-json-file's FileSpanExporter, as written."""
    from opentelemetry.exporter.otlp.json.file import FileSpanExporter  # type: ignore

    target = HERE / "otlp-json-file-exporter.jsonl"
    target.unlink(missing_ok=True)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(target)))
    _run(provider)


def _sort_attributes(node: dict[str, Any]) -> None:
    if isinstance(node.get("attributes"), list):
        node["attributes"].sort(key=lambda kv: kv["key"])


def jaeger() -> None:
    """A Jaeger v2 ``GET /api/v3/traces?query...`` answer for the sample app's traces.

    Jaeger's HTTP gateway (cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/
    http_gateway.go) appends each found trace's ResourceSpans to one ptrace.Traces and
    writes ``GRPCGatewayWrapper{Result: TracesData}`` through pdata's JSON marshaler;
    the query service's standard adjusters sort attributes by key and events by name
    (adjuster/sort.go). We build the same from real spans: the official protobuf
    encoder, OTLP JSON (hex ids), one ResourceSpans per trace, sorted, wrapped.
    """
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_llm.testing import otlp_json

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _run(provider)
    spans = memory.get_finished_spans()
    resource_spans = []
    for trace_id in dict.fromkeys(s.context.trace_id for s in spans):
        doc = otlp_json.encode([s for s in spans if s.context.trace_id == trace_id])
        for rs in doc["resourceSpans"]:
            _sort_attributes(rs["resource"])
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    _sort_attributes(span)
                    span.get("events", []).sort(key=lambda e: e["name"])
            resource_spans.append(rs)
    body = {"result": {"resourceSpans": resource_spans}}
    # compact, as jsonpb writes it; no trailing newline (the handler writes none)
    (HERE / "jaeger-v3-find-traces.json").write_text(json.dumps(body, separators=(",", ":")))


if __name__ == "__main__":
    {"json-file": json_file, "jaeger": jaeger}[sys.argv[1]]()
