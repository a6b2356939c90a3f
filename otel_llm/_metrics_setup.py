"""Metrics plumbing: the MeterProvider, the Prometheus reader and endpoint, the sinks.

Built once per ``instrument()`` from its options and the environment; the instrumentor
keeps the returned ``MetricsSetup`` and stops it on ``uninstrument()`` (no module
globals). The per-call sink itself is ``metrics.Recorder``; providers in general are
``_setup``'s.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics

from otel_llm import metrics as _metrics
from otel_llm import prometheus
from otel_llm._config import Settings
from otel_llm._setup import meter_provider
from otel_llm._types import LLMCall
from otel_llm.version import __version__

__all__ = ["MetricsSetup", "build_metrics"]

_logger = logging.getLogger("otel_llm")


_METER_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
_TRUE = {"1", "true", "yes", "on"}
_kept_readers: weakref.WeakKeyDictionary[Any, prometheus.PrometheusReader] = (
    weakref.WeakKeyDictionary()
)
"""Readers built into a MeterProvider we created: reused by the next ``instrument()``."""


@dataclass
class MetricsSetup:
    """What one ``instrument()`` started for metrics and logs; ``stop`` undoes it."""

    sinks: list[Callable[[LLMCall], None]] = field(default_factory=list)
    endpoint: prometheus.Endpoint | None = None
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """Fold pending calls, stop the endpoint and residency polling, remove added readers."""
        self.endpoint = None
        while self.stops:
            stop = self.stops.pop()
            try:
                stop()
            except Exception as exc:
                _logger.debug("otel_llm: shutdown step failed: %r", exc)


def build_metrics(options: Mapping[str, Any], settings: Settings) -> MetricsSetup:
    """The per-call sinks (metrics recorder, log event) that ``instrument()`` options ask for.

    Options (each falls back to its environment variable, then its default):
    ``metrics`` (on), ``meter_provider``, ``metrics_exporter``, ``latest_metrics`` (off),
    ``max_models`` (100), ``server_metrics`` (on), ``prometheus_port`` / ``prometheus_host`` /
    ``prometheus_resource_labels``, ``log_events`` (off), ``ollama_residency`` (off).
    """
    setup = MetricsSetup()
    if _flag(options.get("metrics"), _metrics.OTEL_LLM_METRICS, True):
        provider = _metrics_provider(options, setup)
        meter = provider.get_meter("otel_llm", __version__, schema_url=_METER_SCHEMA_URL)
        latest = _flag(options.get("latest_metrics"), _metrics.OTEL_LLM_LATEST_METRICS, False)
        models = _metrics.ModelCap(_max_models(options.get("max_models")))
        server = _flag(options.get("server_metrics"), _metrics.OTEL_LLM_SERVER_METRICS, True)
        sink = _metrics.recorder(meter, latest, models, settings, server)
        setup.stops.append(sink.close)  # pending calls reach the readers before we let go
        setup.sinks.append(sink)
        residency = options.get("ollama_residency")
        if residency is None:
            residency = _flag(None, _metrics.OTEL_LLM_OLLAMA_RESIDENCY, False)
        if residency:
            from otel_llm import residency as _residency

            setup.stops.append(_residency.start(meter, residency, settings, models))
    if _flag(options.get("log_events"), _metrics.OTEL_LLM_LOG_EVENTS, False):
        from otel_llm import logs

        setup.sinks.append(logs.CallLogger(settings))
    return setup


def _flag(value: Any, env: str, default: bool) -> bool:
    if value is not None:
        return bool(value)
    raw = os.environ.get(env, "").strip().lower()
    return default if not raw else raw in _TRUE


def _max_models(value: Any) -> int:
    if value is None:
        raw = os.environ.get(_metrics.OTEL_LLM_MAX_MODELS, "").strip()
        try:
            value = int(raw) if raw else _metrics.DEFAULT_MAX_MODELS
        except ValueError:
            value = _metrics.DEFAULT_MAX_MODELS
    return max(1, int(value))


def _prometheus_address(options: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(host, port)`` if the direct endpoint is asked for, by keyword or environment."""
    port = options.get("prometheus_port")
    host = options.get("prometheus_host") or (
        os.environ.get(_metrics.OTEL_EXPORTER_PROMETHEUS_HOST, "").strip()
        or prometheus.DEFAULT_HOST
    )
    if port is None:
        names = options.get("metrics_exporter")
        if names is None:
            names = os.environ.get(_metrics.OTEL_METRICS_EXPORTER, "")
        if "prometheus" not in {n.strip().lower() for n in str(names).split(",")}:
            return None
        raw = os.environ.get(_metrics.OTEL_EXPORTER_PROMETHEUS_PORT, "").strip()
        try:
            port = int(raw) if raw else prometheus.DEFAULT_PORT
        except ValueError:
            _logger.error(
                "otel_llm: %s=%r is not a port", _metrics.OTEL_EXPORTER_PROMETHEUS_PORT, raw
            )
            port = prometheus.DEFAULT_PORT
    return str(host), int(port)


def _metrics_provider(options: Mapping[str, Any], setup: MetricsSetup) -> Any:
    """The app's MeterProvider or ours; with the Prometheus reader on it if one is asked for."""
    provider = options.get("meter_provider")
    address = _prometheus_address(options)
    if address is None:
        return provider or meter_provider(options.get("metrics_exporter"))
    reader = prometheus.PrometheusReader()
    if provider is None:
        building = isinstance(metrics.get_meter_provider(), metrics._internal._ProxyMeterProvider)
        exporter = options.get("metrics_exporter")
        if exporter is None and _metrics.OTEL_METRICS_EXPORTER not in os.environ:
            exporter = (
                "prometheus"  # prometheus_port alone: no OTLP exporter to a missing collector
            )
        provider = meter_provider(exporter, extra_readers=[reader] if building else None)
        if building:
            _kept_readers[provider] = reader
    attached = _attach(provider, reader, setup)
    if attached is not None:
        labels = options.get("prometheus_resource_labels")
        _serve(
            attached,
            *address,
            prometheus.DEFAULT_RESOURCE_LABELS if labels is None else labels,
            setup,
        )
    return provider


def _attach(
    provider: Any, reader: prometheus.PrometheusReader, setup: MetricsSetup
) -> prometheus.PrometheusReader | None:
    """Put ``reader`` on an existing provider (SDK ``add_metric_reader``); undone on stop."""
    kept = _kept_readers.get(provider)
    if kept is not None:
        return kept
    add = getattr(provider, "add_metric_reader", None)
    remove = getattr(provider, "remove_metric_reader", None)
    if add is None or remove is None:
        _logger.error(
            "otel_llm: no Prometheus endpoint: this MeterProvider cannot take another reader;"
            " add otel_llm.prometheus.PrometheusReader() to it and call"
            " otel_llm.prometheus.serve(reader, port)"
        )
        return None
    add(reader)
    setup.stops.append(lambda: remove(reader))
    return reader


def _serve(
    reader: prometheus.PrometheusReader,
    host: str,
    port: int,
    resource_labels: Iterable[str],
    setup: MetricsSetup,
) -> None:
    try:
        served = prometheus.serve(reader, port, host, resource_labels)
    except OSError as exc:
        _logger.error("otel_llm: cannot serve Prometheus metrics on %s:%s: %s", host, port, exc)
        return
    setup.endpoint = served
    setup.stops.append(served.stop)
