"""Providers: the app's own if it set them, else built from the standard ``OTEL_*`` environment.

Exporters are imported lazily so an unused one (gRPC, Jaeger) costs nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from otel_llm import _exporters
from otel_llm import environment_variables as env

__all__ = ["meter_provider", "tracer_provider"]

_logger = logging.getLogger("otel_llm")


_SIGNAL_PROTOCOL = {
    "TRACES": env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    "METRICS": env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
}


def _protocol(signal: str) -> str:
    return (
        os.environ.get(_SIGNAL_PROTOCOL[signal])
        or os.environ.get(env.OTEL_EXPORTER_OTLP_PROTOCOL)
        or "http/protobuf"
    ).strip()


def span_exporters(names: str) -> list[tuple[SpanExporter, bool]]:
    """(exporter, batch?) for each name in ``OTEL_TRACES_EXPORTER`` syntax."""
    out: list[tuple[SpanExporter, bool]] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append((ConsoleSpanExporter(), False))
        elif name == "otlp":
            if _protocol("TRACES") == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcSpanExporter,
                )

                out.append((_exporters.FailFastSpanExporter(GrpcSpanExporter()), True))
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                out.append((_exporters.FailFastSpanExporter(OTLPSpanExporter()), True))
        elif name == "otlp_json_file":
            from otel_llm.otlp_json import OTLPJsonFileSpanExporter

            out.append((OTLPJsonFileSpanExporter(), False))
        elif name == "jaeger":
            try:
                jaeger_exporter = _legacy_jaeger_exporter()
            except ImportError:
                _logger.error(
                    "otel_llm: OTEL_TRACES_EXPORTER=jaeger needs `pip install otel-llm[jaeger]`"
                    " (or use otlp: Jaeger takes OTLP natively)"
                )
                continue
            out.append((jaeger_exporter, True))
        else:
            _logger.error("otel_llm: unknown traces exporter %r ignored", name)
    return out


_JAEGER_ENV = (
    "OTEL_EXPORTER_JAEGER_AGENT_HOST",
    "OTEL_EXPORTER_JAEGER_AGENT_PORT",
    "OTEL_EXPORTER_JAEGER_AGENT_SPLIT_OVERSIZED_BATCHES",
    "OTEL_EXPORTER_JAEGER_ENDPOINT",
    "OTEL_EXPORTER_JAEGER_PASSWORD",
    "OTEL_EXPORTER_JAEGER_TIMEOUT",
    "OTEL_EXPORTER_JAEGER_USER",
)


def _legacy_jaeger_exporter() -> SpanExporter:
    """The thrift exporter (last released 2023) for old Jaeger agents.

    It imports names that newer SDKs dropped from ``environment_variables``; they are
    plain strings equal to their own names, so we put them back before importing it.
    """
    import opentelemetry.sdk.environment_variables as names

    for name in _JAEGER_ENV:
        if not hasattr(names, name):
            setattr(names, name, name)
    from opentelemetry.exporter.jaeger.thrift import (  # type: ignore[import-untyped,unused-ignore]
        JaegerExporter,
    )

    return JaegerExporter()  # type: ignore[no-any-return]


def tracer_provider(exporter: str | None = None, resource: Resource | None = None) -> Any:
    """The global TracerProvider, creating and installing one if the app has none."""
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    provider = TracerProvider(resource=resource or Resource.create())
    names = exporter if exporter is not None else os.environ.get(env.OTEL_TRACES_EXPORTER, "otlp")
    for span_exporter, batch in span_exporters(names):
        processor = (
            _exporters.batch_processor(span_exporter)
            if batch
            else SimpleSpanProcessor(span_exporter)
        )
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()


def metric_readers(names: str) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none", "prometheus"):
            continue  # prometheus: served by otel_llm.prometheus, not a reader here
        if name == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "otlp":
            if _protocol("METRICS") == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                    OTLPMetricExporter as GrpcMetricExporter,
                )

                readers.append(_exporters.metric_reader(GrpcMetricExporter()))
            else:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                    OTLPMetricExporter,
                )

                readers.append(_exporters.metric_reader(OTLPMetricExporter()))
        else:
            _logger.error("otel_llm: unknown metrics exporter %r ignored", name)
    return readers


def meter_provider(
    exporter: str | None = None,
    resource: Resource | None = None,
    extra_readers: list[MetricReader] | None = None,
) -> Any:
    """The global MeterProvider, creating and installing one if the app has none."""
    current = metrics.get_meter_provider()
    if not isinstance(current, metrics._internal._ProxyMeterProvider):
        return current
    names = exporter if exporter is not None else os.environ.get(env.OTEL_METRICS_EXPORTER, "otlp")
    readers = metric_readers(names) + list(extra_readers or [])
    provider = MeterProvider(resource=resource or Resource.create(), metric_readers=readers)
    _exporters.observe_drops(provider)
    metrics.set_meter_provider(provider)
    return metrics.get_meter_provider()
