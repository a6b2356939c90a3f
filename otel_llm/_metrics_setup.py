"""Metrics plumbing: the MeterProvider, the Prometheus reader and endpoint, the sinks.

Built once per ``instrument()`` from its options and the environment; the instrumentor
keeps the returned ``MetricsSetup`` and stops it on ``uninstrument()`` (no module
globals). The per-call sink itself is ``metrics.Recorder``; providers in general are
``_setup``'s.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics

from otel_llm import metrics as _metrics
from otel_llm import prometheus
from otel_llm._config import MetricsSettings, Settings
from otel_llm._setup import meter_provider
from otel_llm._types import LLMCall
from otel_llm.version import __version__

__all__ = ["MetricsSetup", "build_metrics"]

_logger = logging.getLogger("otel_llm")


_METER_SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
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


def build_metrics(
    options: MetricsSettings, settings: Settings, provider: Any = None
) -> MetricsSetup:
    """The per-call sinks (metrics recorder, log event) that ``instrument()`` options ask for.

    ``options`` is resolved once in ``_config`` (keywords over environment over defaults);
    ``provider`` is the app's MeterProvider, if it passed one.
    """
    setup = MetricsSetup()
    if options.enabled:
        provider = _metrics_provider(options, provider, setup)
        meter = provider.get_meter("otel_llm", __version__, schema_url=_METER_SCHEMA_URL)
        models = _metrics.ModelCap(options.max_models)
        sink = _metrics.recorder(
            meter,
            options.latest,
            models,
            settings,
            options.server,
            max_tag_values=options.max_tag_values,
        )
        setup.stops.append(sink.close)  # pending calls reach the readers before we let go
        setup.sinks.append(sink)
        if options.residency:
            from otel_llm import _residency

            setup.stops.append(_residency.start(meter, options.residency, settings, models))
    if options.log_events:
        from otel_llm import logs

        setup.sinks.append(logs.CallLogger(settings))
    return setup


def _metrics_provider(options: MetricsSettings, provider: Any, setup: MetricsSetup) -> Any:
    """The app's MeterProvider or ours; with the Prometheus reader on it if one is asked for."""
    address = options.prometheus
    if address is None:
        return provider or meter_provider(options.exporter)
    reader = prometheus.PrometheusReader()
    if provider is None:
        building = isinstance(metrics.get_meter_provider(), metrics._internal._ProxyMeterProvider)
        provider = meter_provider(options.exporter, extra_readers=[reader] if building else None)
        if building:
            _kept_readers[provider] = reader
    attached = _attach(provider, reader, setup)
    if attached is not None:
        labels = options.prometheus_resource_labels
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
