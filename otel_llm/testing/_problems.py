"""Problem finders: the one home of what the assertions and the spec check.

``SpanSet.assert_*`` / ``SpanView.assert_*`` (``_view``) and the spec's ``expect`` keys
(``spec``) are thin layers over these functions: they pick spans, call a finder, and
frame what it found (an ``AssertionError`` with the trace, or a spec report line).
A finder returns readable problems; none means the expectation holds.

Per span (``Finder``: one span in, its problem or None out):

* ``status_finder``, ``error_type_finder``, ``attribute_finder``, ``value_finder``
  (duration, tokens, time to first chunk: ``MEASURES``), ``order_finder`` (before /
  after), ``parent_finder``, ``ancestor_finder``.

Per trace (a list of problems):

* ``semconv_problems``: each LLM span against the OpenTelemetry GenAI semantic
  conventions for inference spans (``gen-ai-spans.md`` in open-telemetry/semantic-conventions):
  required and conditionally required attributes, types, span name and kind, status vs
  ``error.type``, deprecated names.
* ``content_problems``: prompt/completion text on any span or event.
* ``metrics_problems``: GenAI metrics agree with the spans (call counts, token sums).

Numbers: ``percentile`` and ``aggregate`` (``p95``, ``max`` ...) over span values.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from otel_llm import semconv as sc
from otel_llm.instruments import TOKEN_TYPE
from otel_llm.testing._model import (
    CONTENT_ATTRIBUTES,
    CONTENT_EVENTS,
    CONTENT_PREFIXES,
    SpanRecord,
)
from otel_llm.testing._select import STATUS, VALUES, Index, Selector
from otel_llm.testing.match import Matcher

__all__ = [
    "AGGREGATE",
    "MEASURES",
    "STATUS",
    "UNITS",
    "Finder",
    "MetricPoint",
    "aggregate",
    "ancestor_finder",
    "attribute_finder",
    "content_problems",
    "error_type_finder",
    "find",
    "metrics_problems",
    "order_finder",
    "parent_finder",
    "percentile",
    "semconv_problems",
    "show",
    "status_finder",
    "value_finder",
]

Finder = Callable[[SpanRecord], "str | None"]
"""What is wrong with one span for one expectation (None: nothing)."""

MEASURES: Final = (
    "duration",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "time_to_first_chunk",
)
"""Numeric span values an expectation may bound per span or in aggregate (``VALUES`` keys)."""

UNITS: Final = {"duration": " s", "time_to_first_chunk": " s"}

AGGREGATE: Final = re.compile(r"^(p\d{1,2}(?:\.\d+)?|max|min|mean|sum)$")
"""Aggregate names: ``pNN`` (nearest-rank percentile), ``max``, ``min``, ``mean``, ``sum``."""


def show(value: Any, unit: str = "") -> str:
    """A value as problems print it: floats to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}{unit}"
    return f"{value!r}{unit}"


def find(records: Iterable[SpanRecord], finder: Finder) -> list[tuple[SpanRecord, str]]:
    """Each span with its problem, for the spans that have one."""
    return [(r, p) for r in records for p in [finder(r)] if p is not None]


# -- one span, one expectation -------------------------------------------------------------


def status_finder(wanted: str) -> Finder:
    """The status is ``ok`` (not ERROR), ``error`` or ``unset``."""
    codes = STATUS[wanted]

    def finder(r: SpanRecord) -> str | None:
        if r.status in codes:
            return None
        error = r.attributes.get(sc.ERROR_TYPE)
        return f"status {r.status}" + (f" (error.type={error!r})" if error is not None else "")

    return finder


def error_type_finder(matcher: Matcher) -> Finder:
    """``error.type`` matches."""

    def finder(r: SpanRecord) -> str | None:
        value = r.attributes.get(sc.ERROR_TYPE)
        return None if matcher(value) else f"error.type={value!r}"

    return finder


def attribute_finder(name: str, matcher: Matcher) -> Finder:
    """The attribute ``name`` matches (a missing one is None to the matcher)."""

    def finder(r: SpanRecord) -> str | None:
        if matcher(r.attributes.get(name)):
            return None
        return f"{name} missing" if name not in r.attributes else f"{name}={r.attributes[name]!r}"

    return finder


def value_finder(key: str, matcher: Matcher) -> Finder:
    """The span value ``key`` (one of ``MEASURES``) matches."""
    get, unit = VALUES[key], UNITS.get(key, "")

    def finder(r: SpanRecord) -> str | None:
        value = get(r)
        return None if matcher(value) else f"{key} = {show(value, unit)}"

    return finder


def order_finder(relation: str, others: Sequence[SpanRecord], said: str) -> Finder:
    """``before``: ends before each of ``others`` in its trace starts; ``after``: starts after."""

    def finder(r: SpanRecord) -> str | None:
        same = [o for o in others if o.trace_id == r.trace_id and o is not r]
        if not same:
            return f"no {said} in its trace"
        if relation == "before":
            late = [o for o in same if o.start_ns < r.end_ns]
            return f"ends after {late[0].name!r} starts" if late else None
        early = [o for o in same if o.end_ns > r.start_ns]
        return f"starts before {early[0].name!r} ends" if early else None

    return finder


def parent_finder(select: Selector, index: Index) -> Finder:
    """The parent is selected by ``select``."""

    def finder(r: SpanRecord) -> str | None:
        parent = index.parent(r)
        if parent is None:
            return "no parent"
        return None if select(parent, index) else f"parent is {parent.name!r}"

    return finder


def ancestor_finder(select: Selector | SpanRecord, index: Index) -> Finder:
    """Some ancestor is selected by ``select`` (or is that very span)."""
    if isinstance(select, SpanRecord):
        target = select
        return lambda r: None if target in index.ancestors(r) else "not under it"
    sel = select
    return lambda r: None if any(sel(a, index) for a in index.ancestors(r)) else "no such ancestor"


# -- numbers over spans --------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``p`` % of values at or below."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def aggregate(name: str, values: Sequence[float]) -> float:
    """``max``, ``min``, ``sum``, ``mean`` or ``pNN`` of ``values`` (see ``AGGREGATE``)."""
    if name == "max":
        return max(values)
    if name == "min":
        return min(values)
    if name == "sum":
        return math.fsum(values)
    if name == "mean":
        return math.fsum(values) / len(values)
    return percentile(values, float(name[1:]))


# -- GenAI semantic conventions, content, metrics --------------------------------------------

_INT: Final = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    sc.REQUEST_MAX_TOKENS,
    sc.REQUEST_SEED,
    sc.REQUEST_TOP_K,
    sc.REQUEST_CHOICE_COUNT,
    sc.EMBEDDINGS_DIMENSION_COUNT,
    sc.SERVER_PORT,
)
_DOUBLE: Final = (
    sc.REQUEST_TEMPERATURE,
    sc.REQUEST_TOP_P,
    sc.REQUEST_FREQUENCY_PENALTY,
    sc.REQUEST_PRESENCE_PENALTY,
    sc.RESPONSE_TIME_TO_FIRST_CHUNK,
)
_STRING: Final = (
    sc.OPERATION_NAME,
    sc.PROVIDER_NAME,
    sc.REQUEST_MODEL,
    sc.RESPONSE_MODEL,
    sc.RESPONSE_ID,
    sc.OUTPUT_TYPE,
    sc.CONVERSATION_ID,
    sc.REQUEST_REASONING_LEVEL,
    sc.SERVER_ADDRESS,
    sc.ERROR_TYPE,
)
_STRINGS: Final = (
    sc.RESPONSE_FINISH_REASONS,
    sc.REQUEST_STOP_SEQUENCES,
    sc.REQUEST_ENCODING_FORMATS,
)
_NON_NEGATIVE: Final = (
    *(k for k in _INT if k.startswith("gen_ai.usage.")),
    sc.RESPONSE_TIME_TO_FIRST_CHUNK,
)
DEPRECATED: Final = {
    sc.LEGACY_SYSTEM: sc.PROVIDER_NAME,
    "gen_ai.usage.prompt_tokens": sc.USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": sc.USAGE_OUTPUT_TOKENS,
    "gen_ai.openai.request.seed": sc.REQUEST_SEED,
    "gen_ai.openai.request.response_format": sc.OUTPUT_TYPE,
}


def _type_problem(name: str, value: Any) -> str | None:
    if name in _INT and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name} must be an int, got {value!r}"
    if name in _DOUBLE and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"{name} must be a double, got {value!r}"
    if name in _STRING and not isinstance(value, str):
        return f"{name} must be a string, got {value!r}"
    if name in _STRINGS and not (
        isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)
    ):
        return f"{name} must be a string array, got {value!r}"
    return None


def span_semconv_problems(record: SpanRecord, *, allow_legacy: bool = False) -> list[str]:
    """What one LLM span lacks or gets wrong."""
    attrs = record.attributes
    problems: list[str] = []
    for name in (sc.OPERATION_NAME, sc.PROVIDER_NAME):
        if not attrs.get(name):
            problems.append(f"missing required {name}")
    operation = attrs.get(sc.OPERATION_NAME)
    model = attrs.get(sc.REQUEST_MODEL)
    if model is None and record.name != operation:
        problems.append(
            "missing gen_ai.request.model (conditionally required when the request names a"
            f" model; the span name {record.name!r} suggests it did)"
        )
    expected_name = f"{operation} {model}" if model else str(operation)
    if operation and record.name != expected_name:
        problems.append(f"span name should be {expected_name!r}, got {record.name!r}")
    if record.kind not in ("CLIENT", "INTERNAL"):
        problems.append(f"span kind should be CLIENT, got {record.kind}")
    if sc.SERVER_ADDRESS in attrs and sc.SERVER_PORT not in attrs:
        problems.append("missing server.port (conditionally required when server.address is set)")
    if record.status == "ERROR" and not attrs.get(sc.ERROR_TYPE):
        problems.append("status is ERROR but error.type is missing (conditionally required)")
    if attrs.get(sc.ERROR_TYPE) and record.status != "ERROR":
        problems.append(f"error.type={attrs['error.type']!r} but the status is {record.status}")
    if attrs.get(sc.REQUEST_CHOICE_COUNT) == 1:
        problems.append("gen_ai.request.choice.count is set only when it is not 1")
    for name, value in attrs.items():
        problem = _type_problem(name, value)
        if problem:
            problems.append(problem)
        elif name in _NON_NEGATIVE and isinstance(value, (int, float)) and value < 0:
            problems.append(f"{name} is negative ({value!r})")
        if not allow_legacy and name in DEPRECATED:
            problems.append(f"deprecated {name} (use {DEPRECATED[name]})")
    return problems


def semconv_problems(records: Iterable[SpanRecord], *, allow_legacy: bool = False) -> list[str]:
    """Every LLM span's problems, prefixed by the span."""
    out = []
    for record in records:
        if record.is_llm:
            for problem in span_semconv_problems(record, allow_legacy=allow_legacy):
                out.append(f"{record.name} (span {record.span_id}): {problem}")
    return out


def content_problems(records: Iterable[SpanRecord]) -> list[str]:
    """Prompt or completion text recorded anywhere (attributes or events)."""
    out = []
    for record in records:
        found = sorted(
            name
            for name in record.attributes
            if name in CONTENT_ATTRIBUTES or name.startswith(CONTENT_PREFIXES)
        )
        for event in record.events:
            if event.name in CONTENT_EVENTS:
                found.append(f"event {event.name}")
            found.extend(
                f"event {event.name}: {name}"
                for name in event.attributes
                if name in CONTENT_ATTRIBUTES
            )
        if found:
            out.append(f"{record.name} (span {record.span_id}) records content: {', '.join(found)}")
    return out


# -- metrics vs traces ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetricPoint:
    """One data point as collected: a sum (counter), a histogram or a gauge value."""

    name: str
    attributes: Mapping[str, Any]
    kind: str  # "sum" | "histogram" | "gauge"
    value: float  # sum for histograms
    count: int = 0  # histograms only
    extra: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, attributes: Mapping[str, Any] | None) -> bool:
        """Every given attribute has this value on the point (None: any point)."""
        return all(self.attributes.get(k) == v for k, v in (attributes or {}).items())


def _names() -> dict[str, str]:
    """The metric names the checks read, from ``otel_llm.instruments`` (their one home)."""
    from otel_llm import instruments as ins

    return {
        "duration": ins.OPERATION_DURATION.name,
        "token_usage": ins.TOKEN_USAGE.name,
        "inference_duration": ins.INFERENCE_DURATION.name,
        "embeddings_duration": ins.EMBEDDINGS_DURATION.name,
        "usage_input": ins.INFERENCE_USAGE_INPUT.name,
        "usage_output": ins.INFERENCE_USAGE_OUTPUT.name,
        "embeddings_input": ins.EMBEDDINGS_INPUT.name,
    }


Group = tuple[str, str]  # (operation, request model)


def _group(attrs: Mapping[str, Any]) -> Group:
    return (str(attrs.get(sc.OPERATION_NAME, "")), str(attrs.get(sc.REQUEST_MODEL, "")))


def _label(group: Group) -> str:
    operation, model = group
    return f"{operation} {model}".strip()


def metrics_problems(records: Sequence[SpanRecord], points: Sequence[MetricPoint]) -> list[str]:
    """GenAI metrics that disagree with the LLM spans: call counts and token sums per model."""
    names = _names()
    # An SDK span with ours nested in it was counted by the SDK, in its own meter.
    counted_by_sdk = {r.parent_id for r in records if r.attributes.get(sc.NESTED_IN_SDK_SPAN)}
    calls = [r for r in records if r.is_llm and r.span_id not in counted_by_sdk]
    by_name: dict[str, list[MetricPoint]] = defaultdict(list)
    for point in points:
        by_name[point.name].append(point)
    latest = names["inference_duration"] in by_name or names["embeddings_duration"] in by_name
    if not calls:
        return []
    if not any(
        n in by_name
        for n in (names["duration"], names["inference_duration"], names["embeddings_duration"])
    ):
        return [f"{len(calls)} LLM spans but no GenAI duration metric was recorded"]
    problems: list[str] = []

    def compare(what: str, spans: dict[Group, float], metric: dict[Group, float]) -> None:
        for group in sorted(set(spans) | set(metric)):
            want, got = spans.get(group, 0), metric.get(group, 0)
            if want != got:
                problems.append(f"{_label(group)}: {what}: spans say {want:g}, metrics say {got:g}")

    span_counts: dict[Group, float] = defaultdict(float)
    for record in calls:
        span_counts[_group(record.attributes)] += 1
    metric_counts: dict[Group, float] = defaultdict(float)
    duration_names = (
        (names["inference_duration"], names["embeddings_duration"])
        if latest
        else (names["duration"],)
    )
    for name in duration_names:
        for point in by_name.get(name, ()):
            metric_counts[_group(point.attributes)] += point.count
    compare(f"calls ({' + '.join(duration_names)} count)", span_counts, metric_counts)

    def span_sum(attr: str, keep: Any) -> dict[Group, float]:
        sums: dict[Group, float] = defaultdict(float)
        for record in calls:
            value = record.attributes.get(attr)
            if isinstance(value, int) and keep(record):
                sums[_group(record.attributes)] += value
        return sums

    def metric_sum(name: str, where: Mapping[str, Any] | None = None) -> dict[Group, float]:
        sums: dict[Group, float] = defaultdict(float)
        for point in by_name.get(name, ()):
            if point.matches(where):
                sums[_group(point.attributes)] += point.value
        return sums

    def is_embeddings(r: SpanRecord) -> bool:
        return r.attributes.get(sc.OPERATION_NAME) == "embeddings"

    if not latest:
        for token_type, attr in (
            ("input", sc.USAGE_INPUT_TOKENS),
            ("output", sc.USAGE_OUTPUT_TOKENS),
        ):
            compare(
                f"{token_type} tokens ({names['token_usage']})",
                span_sum(attr, lambda r: True),
                metric_sum(names["token_usage"], {TOKEN_TYPE: token_type}),
            )
        return problems
    compare(
        f"input tokens ({names['usage_input']})",
        span_sum(sc.USAGE_INPUT_TOKENS, lambda r: not is_embeddings(r)),
        metric_sum(names["usage_input"]),
    )
    compare(
        f"output tokens ({names['usage_output']})",
        span_sum(sc.USAGE_OUTPUT_TOKENS, lambda r: not is_embeddings(r)),
        metric_sum(names["usage_output"]),
    )
    compare(
        f"embeddings input tokens ({names['embeddings_input']})",
        span_sum(sc.USAGE_INPUT_TOKENS, lambda r: is_embeddings(r) and r.status != "ERROR"),
        metric_sum(names["embeddings_input"]),
    )
    return problems
