"""Fold a batch of measurements into the SDK's instruments: one lookup per attribute set.

The SDK's ``Histogram.record`` costs 10-20 µs a value (a ``Measurement`` object, the
attributes cleaned, copied and hashed, the exemplar filter, locks). A ``Batch`` groups
the values of many finished calls by (instrument, attribute dict) — the recorder reuses
one dict per label set, so a group is the calls of one model — and ``Folder`` adds each
group to every reader's aggregation of that label set directly: one lookup per group,
then the aggregation's own ``aggregate`` per value. Values that carry a span go through
the SDK's exemplar filter and reservoir with their span's context, as a ``record`` would.

That path reads SDK internals, checked once per meter; where they are not what it
expects (another SDK version, an API-only provider) every value goes through the public
``record``/``add`` instead: slower, same data.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.util.types import AttributeValue

from otel_llm._guard import report

__all__ = ["Batch", "Folder"]

Attributes = Mapping[str, AttributeValue]
Instrument = Histogram | Counter

_NO_SPAN = Context()
"""Values recorded under this context carry no exemplar (no span in it)."""


class _Group:
    __slots__ = ("attributes", "instrument", "sampled", "values")

    def __init__(self, instrument: Instrument, attributes: Attributes) -> None:
        self.instrument = instrument
        self.attributes = attributes
        self.values: list[float] = []
        self.sampled: list[tuple[float, int, Span]] = []


class Batch:
    """Measurements of finished calls, grouped by instrument and attribute dict."""

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[tuple[int, int], _Group] = {}

    def _group(self, instrument: Instrument, attributes: Attributes) -> _Group:
        # The group holds both objects, so their ids stay unique while the batch lives.
        key = (id(instrument), id(attributes))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(instrument, attributes)
        return group

    def add(self, instrument: Instrument, value: float, attributes: Attributes) -> None:
        """One value with no exemplar."""
        self._group(instrument, attributes).values.append(value)

    def add_sampled(
        self,
        instrument: Instrument,
        value: float,
        attributes: Attributes,
        span: Span | None,
        at_ns: int,
    ) -> None:
        """One value that may become an exemplar of ``span`` (recorded at ``at_ns``)."""
        group = self._group(instrument, attributes)
        if span is None:
            group.values.append(value)
        else:
            group.sampled.append((value, at_ns, span))


class _Value:
    """What an aggregation reads of a measurement it is not asked to sample: the value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _Measured:
    """What an aggregation and its exemplar reservoir read of a measurement.

    The SDK's ``Measurement`` would clean the attributes again for every value; these
    are ours, already clean, and shared by the whole group.
    """

    __slots__ = ("attributes", "context", "instrument", "time_unix_nano", "value")

    def __init__(
        self, value: float, at_ns: int, instrument: Instrument, context: Context, attributes: Any
    ) -> None:
        self.value = value
        self.time_unix_nano = at_ns
        self.instrument = instrument
        self.context = context
        self.attributes = attributes


def _sdk_parts(meter: Meter) -> tuple[Any, Callable[[Any], Any]] | None:
    """(measurement consumer, attribute hasher) if the fast path fits."""
    consumer = getattr(meter, "_measurement_consumer", None)
    try:
        from opentelemetry.sdk.metrics._internal._view_instrument_match import (
            _hash_attributes,
            _ViewInstrumentMatch,
        )
        from opentelemetry.sdk.metrics._internal.measurement_consumer import (
            SynchronousMeasurementConsumer,
        )
        from opentelemetry.sdk.metrics._internal.metric_reader_storage import (
            MetricReaderStorage,
        )
    except ImportError:
        return None
    fits = (
        isinstance(consumer, SynchronousMeasurementConsumer)
        and hasattr(consumer, "_reader_storages")
        and hasattr(consumer, "_sdk_config")
        and hasattr(MetricReaderStorage, "_get_or_init_view_instrument_match")
        and hasattr(_ViewInstrumentMatch, "_get_or_create_aggregation")
    )
    return (consumer, _hash_attributes) if fits else None


_POINTS: Final = 4096
"""Attribute dicts whose hash ``Folder`` keeps (label sets by views); cleared when full."""


def _usable(value: float) -> bool:
    """What ``record``/``add`` would keep: finite and not negative."""
    return value >= 0 and math.isfinite(value)


class Folder:
    """Writes batches into one meter's instruments; ``deferred`` when batching pays."""

    __slots__ = ("_points", "_sdk", "deferred")

    def __init__(self, meter: Meter, fast: bool = True) -> None:
        sdk = _sdk_parts(meter)
        self.deferred = sdk is not None
        """The SDK's readers run observable callbacks: collection can fold what is pending."""
        self._sdk = sdk if fast else None
        self._points: dict[tuple[int, int], tuple[Attributes, Any, Attributes]] = {}
        """(attribute dict, view keys) → (that dict, its SDK hash, the view's point): the
        recorder reuses one dict per label set and never changes it, so its hash (a third
        of a fold's cost) is computed once, not once per group and fold."""

    @property
    def fast(self) -> bool:
        """False when every value goes through the public ``record``/``add``."""
        return self._sdk is not None

    def fold(self, batch: Batch) -> None:
        spans: dict[int, tuple[Context, bool]] = {}  # a span's context and exemplar verdict
        for group in batch.groups.values():
            if self._sdk is not None:
                try:
                    self._fold_sdk(group, spans, *self._sdk)
                except Exception as exc:  # an SDK we do not know: public API from now on
                    report("otel_llm._fold.sdk", exc)
                    self._sdk = None
                continue
            try:
                self._fold_public(group)
            except Exception as exc:  # one group lost, reported; the others still count
                report("otel_llm._fold.public", exc)

    @staticmethod
    def _fold_public(group: _Group) -> None:
        instrument, attributes = group.instrument, group.attributes
        write = instrument.record if isinstance(instrument, Histogram) else instrument.add
        for value in group.values:
            write(value, attributes, _NO_SPAN)
        for value, _, span in group.sampled:
            write(value, attributes, set_span_in_context(span))

    def _fold_sdk(
        self,
        group: _Group,
        spans: dict[int, tuple[Context, bool]],
        consumer: Any,
        hash_attributes: Callable[[Any], Any],
    ) -> None:
        instrument, attributes = group.instrument, group.attributes
        enabled = getattr(instrument, "_is_enabled", None)
        if enabled is not None and not enabled():
            return
        should_sample = consumer._sdk_config.exemplar_filter.should_sample
        values = [v for v in group.values if _usable(v)]
        now = time_ns()
        # Context-free values: sampled only under an always-on exemplar filter.
        plain: list[_Measured] = []
        if values and should_sample(values[0], now, attributes, _NO_SPAN):
            plain = [_Measured(v, now, instrument, _NO_SPAN, attributes) for v in values]
            values = []
        # Values with a span: the filter's verdict once per span (the SDK's filters look
        # at the context only), a context only for those it samples.
        sampled: list[_Measured] = []
        for value, at_ns, span in group.sampled:
            if not _usable(value):
                continue
            seen = spans.get(id(span))
            if seen is None:
                ctx = set_span_in_context(span)
                seen = spans[id(span)] = (ctx, should_sample(value, at_ns, attributes, ctx))
            if seen[1]:
                sampled.append(_Measured(value, at_ns, instrument, seen[0], attributes))
            else:
                values.append(value)
        carrier = _Value()
        for storage in consumer._reader_storages.values():
            for match in storage._get_or_init_view_instrument_match(instrument):
                keys = match._view._attribute_keys
                known = self._points.get((id(attributes), id(keys)))
                if known is not None and known[0] is attributes:  # the dict holds the id
                    key, point = known[1], known[2]
                else:
                    point = (
                        attributes
                        if keys is None
                        else {k: v for k, v in attributes.items() if k in keys}
                    )
                    key = hash_attributes(point)
                    if len(self._points) >= _POINTS:
                        self._points.clear()
                    self._points[(id(attributes), id(keys))] = (attributes, key, point)
                with match._lock:
                    aggregation = match._get_or_create_aggregation(key, point)
                    aggregate = aggregation.aggregate
                    for value in values:
                        carrier.value = value
                        aggregate(carrier, False)
                    for m in plain:
                        aggregate(m, True)
                    for m, offer in _last_per_bucket(sampled, aggregation):
                        aggregate(m, offer)


def _last_per_bucket(sampled: list[_Measured], aggregation: Any) -> list[tuple[_Measured, bool]]:
    """Which values to offer to an explicit-bucket reservoir: the last one per bucket.

    That reservoir keeps the last value offered to each bucket, so offering only those
    leaves the same exemplars; other aggregations are offered every value.
    """
    boundaries = getattr(aggregation, "_boundaries", None)
    if boundaries is None or len(sampled) < 2:
        return [(m, True) for m in sampled]
    last = {bisect_left(boundaries, m.value): i for i, m in enumerate(sampled)}
    keep = set(last.values())
    return [(m, i in keep) for i, m in enumerate(sampled)]
