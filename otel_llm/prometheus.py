"""A direct Prometheus ``/metrics`` endpoint for setups without a collector.

One SDK pull ``MetricReader`` on the MeterProvider feeds a prometheus_client custom
collector, so the endpoint serves exactly the data OTLP carries. Names and labels are
translated the way the OpenTelemetry Collector's ``prometheus`` exporter translates
them by default (``UnderscoreEscapingWithSuffixes``, scope labels on, resource →
``job``/``instance``/``target_info``; see ``docs/metrics.md``), so one set of
dashboards serves both paths. prometheus_client negotiates OpenMetrics, which carries
the histogram exemplars (trace and span ids).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from prometheus_client import CollectorRegistry
from prometheus_client import utils as _client_utils
from prometheus_client.core import Exemplar, Metric
from prometheus_client.exposition import start_http_server

from otel_llm._guard import report
from otel_llm._units import seconds

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_RESOURCE_LABELS",
    "Endpoint",
    "PrometheusReader",
    "label_name",
    "metric_name",
    "serve",
    "translate",
]

_logger = logging.getLogger("otel_llm")

DEFAULT_PORT = 9464
DEFAULT_HOST = "127.0.0.1"
DEFAULT_RESOURCE_LABELS = ("service.name", "service.namespace", "deployment.environment.name")
"""What deploy/collector.yaml's ``resource_constant_labels`` copies: dashboards filter on them."""

# OTLP unit → Prometheus unit suffix (prometheus/otlptranslator ``unitMap``/``perUnitMap``).
_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz",
    "1": "", "%": "percent",
}  # fmt: skip
_PER_UNITS = {
    "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
    "y": "year",
}  # fmt: skip
_NAME_SEPARATOR = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9:_]")
_MULTIPLE_UNDERSCORES = re.compile(r"__+")
_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_go_float = cast(Callable[[float], str], _client_utils.floatToGoString)  # "1.0", "+Inf"
_RESERVED_RESOURCE = ("service.name", "service.namespace", "service.instance.id")


def _clean_unit(unit: str) -> str:
    return _MULTIPLE_UNDERSCORES.sub("_", _INVALID_METRIC_CHAR.sub("_", unit)).removeprefix("_")


def _unit_suffixes(unit: str) -> tuple[str, str]:
    main_otel, _, per_otel = unit.partition("/")
    main_otel, per_otel = main_otel.strip(), per_otel.strip()
    main = "" if not main_otel or "{" in main_otel or "}" in main_otel else main_otel
    per = "" if not per_otel or "{" in per_otel or "}" in per_otel else per_otel
    main = _UNITS.get(main, main)
    per = "per_" + _PER_UNITS.get(per, per) if per else ""
    return _clean_unit(main), _clean_unit(per)


def metric_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus name the Collector gives an OTLP metric (``kind``: histogram/counter/gauge).

    ``gen_ai.client.operation.duration`` (s) → ``gen_ai_client_operation_duration_seconds``;
    ``{token}``-style annotations add no suffix; monotonic counters end in ``_total``.
    """
    tokens = [t for t in _NAME_SEPARATOR.split(name) if t]
    main, per = _unit_suffixes(unit)
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    if main:
        tokens.append(main)
    if per:
        tokens.append(per)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    joined = "_".join(tokens)
    return "_" + joined if joined[:1].isdigit() else joined


def label_name(key: str) -> str:
    """The Prometheus label of an attribute (``server.port`` → ``server_port``)."""
    label = _INVALID_LABEL_CHAR.sub("_", key)
    if label[:1].isdigit():
        return "key_" + label
    if label.startswith("_") and not label.startswith("__"):
        return "key" + label
    return label


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), separators=(",", ":"))
    return str(value)


def _labels(attributes: Mapping[str, Any] | None, base: Mapping[str, str]) -> dict[str, str]:
    labels = {label_name(k): _label_value(v) for k, v in (attributes or {}).items()}
    labels.update(base)
    return labels


def _job_instance(resource: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    name = resource.get("service.name")
    if name is not None:
        namespace = resource.get("service.namespace")
        out["job"] = f"{namespace}/{name}" if namespace is not None else str(name)
    instance = resource.get("service.instance.id")
    if instance is not None:
        out["instance"] = str(instance)
    return out


def _target_info(resource: Mapping[str, Any], job_instance: Mapping[str, str]) -> Metric | None:
    """``target_info``: only for a resource that names both a job and an instance."""
    if len(job_instance) < 2:
        return None
    labels: dict[str, str] = {}
    for key, value in resource.items():
        if key in _RESERVED_RESOURCE:
            continue
        name = label_name(key)
        text = _label_value(value)
        labels[name] = f"{labels[name]};{text}" if name in labels else text
    labels.update(job_instance)
    metric = Metric("target_info", "Target metadata", "gauge")
    metric.add_sample("target_info", labels, 1.0)
    return metric


def _exemplars(point: HistogramDataPoint) -> dict[int, Exemplar]:
    """Exemplars by bucket index (the one whose bound is the first >= the value)."""
    out: dict[int, Exemplar] = {}
    for ex in point.exemplars or ():
        labels: dict[str, str] = {}
        if ex.trace_id:
            labels["trace_id"] = format(ex.trace_id, "032x")
        if ex.span_id:
            labels["span_id"] = format(ex.span_id, "016x")
        index = bisect_left(point.explicit_bounds, ex.value)
        out[index] = Exemplar(labels, ex.value, seconds(ex.time_unix_nano))
    return out


def _add_histogram(metric: Metric, point: HistogramDataPoint, labels: dict[str, str]) -> None:
    exemplars = _exemplars(point)
    cumulative = 0
    bounds = [*point.explicit_bounds, float("inf")]
    for index, (bound, count) in enumerate(zip(bounds, point.bucket_counts, strict=False)):
        cumulative += count
        metric.add_sample(
            metric.name + "_bucket",
            {**labels, "le": _go_float(bound)},
            cumulative,
            exemplar=exemplars.get(index),
        )
    metric.add_sample(metric.name + "_count", labels, point.count)
    metric.add_sample(metric.name + "_sum", labels, point.sum)


def _resource_labels(resource: Mapping[str, Any], keys: Iterable[str]) -> dict[str, str]:
    """The Collector's ``resource_constant_labels``: chosen resource attributes on every series."""
    resource = dict(resource)
    # deploy/collector.yaml's transform/environment: the old spelling fills the new one.
    if "deployment.environment.name" not in resource and "deployment.environment" in resource:
        resource["deployment.environment.name"] = resource["deployment.environment"]
    return {label_name(k): _label_value(resource[k]) for k in keys if k in resource}


def translate(
    data: MetricsData | None, resource_labels: Iterable[str] = DEFAULT_RESOURCE_LABELS
) -> list[Metric]:
    """OTel SDK metrics → Prometheus metric families, named as the Collector names them.

    ``resource_labels``: resource attributes copied onto every series, like the
    Collector's ``resource_constant_labels.included`` (deploy/collector.yaml's list).
    """
    keys = tuple(resource_labels)
    families: dict[str, Metric] = {}
    out: list[Metric] = []
    seen_targets: set[tuple[str, str]] = set()
    for resource_metrics in data.resource_metrics if data else ():
        resource = dict(resource_metrics.resource.attributes)
        job_instance = _job_instance(resource)
        target_key = (job_instance.get("job", ""), job_instance.get("instance", ""))
        if target_key not in seen_targets:
            seen_targets.add(target_key)
            target = _target_info(resource, job_instance)
            if target is not None:
                out.append(target)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            base = {
                label_name("otel_scope_" + k): _label_value(v)
                for k, v in (scope.attributes or {}).items()
            }
            base["otel_scope_name"] = scope.name
            base["otel_scope_version"] = scope.version or ""
            base["otel_scope_schema_url"] = scope.schema_url or ""
            base.update(_resource_labels(resource, keys))
            base.update(job_instance)
            for metric in scope_metrics.metrics:
                _add_metric(
                    families,
                    metric.name,
                    metric.unit or "",
                    metric.description or "",
                    metric.data,
                    base,
                )
    out.extend(families.values())
    return out


def _add_metric(
    families: dict[str, Metric],
    otel_name: str,
    unit: str,
    description: str,
    data: Any,
    base: Mapping[str, str],
) -> None:
    if isinstance(data, Histogram):
        kind = "histogram"
    elif isinstance(data, Sum):
        kind = "counter" if data.is_monotonic else "gauge"
    elif isinstance(data, Gauge):
        kind = "gauge"
    else:
        return  # exponential histograms: we record none
    name = metric_name(otel_name, unit, kind)
    family_name = name.removesuffix("_total") if kind == "counter" else name
    metric = families.get(family_name)
    if metric is None:
        metric = families[family_name] = Metric(family_name, description, kind)
    elif metric.type != kind:
        _logger.debug("otel_llm: %s dropped: type %s conflicts with %s", name, kind, metric.type)
        return
    for point in data.data_points:
        labels = _labels(point.attributes, base)
        if isinstance(point, HistogramDataPoint):
            _add_histogram(metric, point, labels)
        elif isinstance(point, NumberDataPoint):
            sample = family_name + "_total" if kind == "counter" else family_name
            metric.add_sample(sample, labels, float(point.value))


class PrometheusReader(MetricReader):
    """A pull reader: the SDK aggregates into it, a scrape collects from it.

    Add it to your own MeterProvider (``MeterProvider(metric_readers=[reader])``) and
    pass it to ``serve``; ``instrument(prometheus_port=...)`` does both for you.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._last: MetricsData | None = None

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._last = metrics_data

    def snapshot(self) -> MetricsData | None:
        """Collect now (observable callbacks run) and return the cumulative data."""
        with self._lock:
            self._last = None
            self.collect()
            return self._last

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._last = None


class _Collector:
    """The prometheus_client side: each scrape translates a fresh snapshot."""

    def __init__(self, reader: PrometheusReader, resource_labels: Iterable[str]) -> None:
        self._reader = reader
        self._resource_labels = tuple(resource_labels)

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = translate(self._reader.snapshot(), self._resource_labels)
        except Exception as exc:  # a scrape must not kill the server thread
            report("otel_llm.prometheus.collect", exc)
            return iter(())
        return iter(metrics)


@dataclass
class Endpoint:
    """A running ``/metrics`` server; ``stop()`` closes its socket and joins its thread."""

    host: str
    port: int
    reader: PrometheusReader
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(
    reader: PrometheusReader,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    resource_labels: Iterable[str] = DEFAULT_RESOURCE_LABELS,
) -> Endpoint:
    """Serve ``reader``'s metrics at ``http://host:port/metrics`` from a daemon thread.

    ``port=0`` binds a free port (see ``Endpoint.port``). Raises ``OSError`` if the
    address is taken.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(reader, resource_labels))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return Endpoint(host, int(server.server_port), reader, server, thread)
