"""LLM-aware checks shared by the pytest plugin and ``otel-llm check``.

* ``semconv_problems``: each LLM span against the GenAI semantic conventions
  (``/work/shared/reference/genai-semconv.md`` §1): required and conditionally required
  attributes, types, span name and kind, status vs ``error.type``, deprecated names.
* ``content_problems``: prompt/completion text on any span or event.
* ``metrics_problems``: GenAI metrics agree with the spans (call counts, token sums).

Each returns a list of readable problems; empty means the check passed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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

__all__ = [
    "MetricPoint",
    "content_problems",
    "metrics_problems",
    "semconv_problems",
]

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
            if all(point.attributes.get(k) == v for k, v in (where or {}).items()):
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
