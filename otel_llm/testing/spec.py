"""The spec: named checks on LLM traces, in YAML, run by ``otel-llm check`` and ``assert_spec``.

A spec is YAML (or JSON, or a dict) with a list of checks. Each check selects spans,
then expects things of them. The vocabulary is the pytest plugin's: selectors
(``_select``), matchers (``match``), and each ``expect`` key is a problem finder of
``_problems`` (the same one behind the matching ``SpanSet.assert_*``)::

    checks:
      - name: every chat call succeeds
        calls: {operation: chat}            # LLM calls narrowed by a selector (default: all)
        expect: {status: ok}

      - name: p95 chat latency under 2 s
        calls: {operation: chat}
        expect: {duration: {p95: {lt: 2}}}   # aggregates: pNN, max, min, mean, sum

      - name: no call over 4,000 output tokens
        expect: {output_tokens: {lte: 4000}}     # every selected span

      - name: each request has one embeddings call, before the chat
        per_trace: {operation: invoke_workflow}  # evaluate inside each such trace
        calls: {operation: embeddings}
        expect: {count: 1, before: {operation: chat}}

``spans:`` instead of ``calls:`` selects among all spans. A check that selects nothing
fails (an empty export must not pass) unless it expects a ``count`` or says
``allow_empty: true``.

``expect`` keys: ``count``; ``status`` (ok/error/unset); ``error_type``; ``attributes``
(name: matcher); ``duration``, ``input_tokens``, ``output_tokens``, ``total_tokens``,
``time_to_first_chunk`` (a matcher on each span that has the value, and/or aggregates
over those values); ``before`` /
``after`` (a selector: spans of the same trace this one must end before / start
after; at least one must exist); ``parent`` / ``ancestor`` (a selector); ``semconv``
and ``no_content`` (true); ``shape`` (an outline, or ``{outline: ..., strict: true}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from otel_llm.testing import _problems as pb
from otel_llm.testing import _shape
from otel_llm.testing._model import SpanRecord
from otel_llm.testing._select import STATUS, VALUES, Index, Selector, selector
from otel_llm.testing.match import OPERATORS, Matcher, as_matcher

__all__ = ["Check", "CheckResult", "SpecError", "evaluate", "load_spec"]

_MAX_LISTED: Final = 5
_EXPECT_ORDER: Final = (  # the order problems are reported in
    "count",
    "status",
    "error_type",
    "attributes",
    *pb.MEASURES,
    "before",
    "after",
    "parent",
    "ancestor",
    "semconv",
    "no_content",
    "shape",
)
_EXPECT_KEYS: Final = frozenset(_EXPECT_ORDER)
_CHECK_KEYS: Final = frozenset(
    {"name", "description", "calls", "spans", "per_trace", "expect", "allow_empty"}
)


class SpecError(ValueError):
    """The spec cannot be read; the message names the check and the key."""


@dataclass(frozen=True)
class Check:
    """One compiled check."""

    name: str
    select: Selector
    what: str  # "LLM calls" / "spans", for messages
    said: str  # the selector as the spec wrote it, for messages
    expect: Mapping[str, Any]
    per_trace: Selector | None = None
    allow_empty: bool = False
    description: str = ""


@dataclass
class CheckResult:
    check: Check
    problems: list[str] = field(default_factory=list)
    selected: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems

    def render(self) -> str:
        count = f"{self.selected} span{'' if self.selected == 1 else 's'}"
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.check.name}  ({count})"
        lines = [head]
        for problem in self.problems:
            first, *rest = problem.splitlines()
            lines.append(f"      {first}")
            lines.extend(f"        {line}" for line in rest)
        return "\n".join(lines)


def _split_metric(spec: Any, where: str) -> tuple[Matcher | None, dict[str, Matcher]]:
    """A metric expectation: per-span matcher ops and aggregate matchers (``p95``...)."""
    if not isinstance(spec, Mapping):
        return as_matcher(spec), {}
    each = {k: v for k, v in spec.items() if not pb.AGGREGATE.match(str(k))}
    aggregates = {str(k): as_matcher(v) for k, v in spec.items() if pb.AGGREGATE.match(str(k))}
    unknown = sorted(set(map(str, each)) - OPERATORS)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(unknown)}: use matcher operators"
            f" ({', '.join(sorted(OPERATORS))}) or aggregates (p50, p95, max, min, mean, sum)"
        )
    return (as_matcher(each) if each else None), aggregates


def _compile(raw: Any, position: int) -> Check:
    where = f"check #{position}"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping with name and expect")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{where}: every check needs a name")
    where = f"check {name!r}"
    unknown = sorted(set(map(str, raw)) - _CHECK_KEYS)
    if unknown:
        raise SpecError(
            f"{where}: unknown key(s) {', '.join(unknown)}"
            f" (known: {', '.join(sorted(_CHECK_KEYS))})"
        )
    if "calls" in raw and "spans" in raw:
        raise SpecError(f"{where}: give calls or spans, not both")
    expect = raw.get("expect")
    if not isinstance(expect, Mapping) or not expect:
        raise SpecError(f"{where}: expect must be a non-empty mapping")
    bad = sorted(set(map(str, expect)) - _EXPECT_KEYS)
    if bad:
        raise SpecError(
            f"{where}: unknown expect key(s) {', '.join(bad)}"
            f" (known: {', '.join(sorted(_EXPECT_KEYS))})"
        )
    try:
        if "spans" in raw:
            sel, what = selector(raw["spans"] or {}), "spans"
            said = sel.describe()
        else:
            user = selector(raw.get("calls") or {})
            sel, what, said = selector({"llm": True}).and_(user), "LLM calls", user.describe()
        per_trace = raw.get("per_trace")
        per: Selector | None
        if per_trace is None or per_trace is False:
            per = None
        elif per_trace is True:
            per = Selector()
        else:
            per = selector(per_trace)
        _validate_expect(expect, where)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{where}: {exc}") from exc
    return Check(
        name=name.strip(),
        select=sel,
        what=what,
        said=said,
        expect=dict(expect),
        per_trace=per,
        allow_empty=bool(raw.get("allow_empty", False)),
        description=str(raw.get("description", "")),
    )


def _validate_expect(expect: Mapping[str, Any], where: str) -> None:
    for key, value in expect.items():
        if key in pb.MEASURES:
            _split_metric(value, f"{where}: expect.{key}")
        elif key == "count":
            as_matcher(value)
        elif key in _PER_SPAN:
            _PER_SPAN[key](value, Index(()), ())  # builds the finders: bad values raise here
        elif key == "shape":
            outline = value.get("outline") if isinstance(value, Mapping) else value
            if not isinstance(outline, str):
                raise SpecError(
                    f"{where}: expect.shape is an outline string or {{outline, strict}}"
                )
            try:
                _shape.parse_shape(outline)
            except _shape.ShapeError as exc:
                raise SpecError(f"{where}: expect.shape: {exc}") from exc


def load_spec(source: Any) -> list[Check]:
    """Compile a spec from a path, YAML/JSON text, a dict (``{"checks": [...]}``) or a list."""
    data = source
    if isinstance(source, Path) or (isinstance(source, str) and _looks_like_path(source)):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
        data = _parse(text, str(path))
    elif isinstance(source, str):
        data = _parse(source, "spec")
    if isinstance(data, Mapping):
        unknown = sorted(set(map(str, data)) - {"checks", "version"})
        if unknown:
            raise SpecError(f"spec: unknown top-level key(s) {', '.join(unknown)} (use checks)")
        data = data.get("checks")
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)) or not data:
        raise SpecError("spec: expected a non-empty list of checks (checks: [...])")
    checks = [_compile(raw, i) for i, raw in enumerate(data, 1)]
    names = [c.name for c in checks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"spec: duplicate check names: {', '.join(dupes)}")
    return checks


def _looks_like_path(text: str) -> bool:
    if "\n" in text or ":" in text.split("/")[-1]:
        return False
    return text.strip().endswith((".yaml", ".yml", ".json")) or Path(text).is_file()


def _parse(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML/JSON: {exc}") from exc


# -- evaluation: each expect key frames what its problem finder found ----------------------


def _label(record: SpanRecord) -> str:
    return f"{record.name} [trace {record.trace_id} span {record.span_id}]"


def _each(selected: Sequence[SpanRecord], finder: pb.Finder, what: str) -> list[str]:
    bad = pb.find(selected, finder)
    if not bad:
        return []
    lines = [f"{len(bad)} of {len(selected)} spans: {what}"]
    lines.extend(f"{p}: {_label(r)}" for r, p in bad[:_MAX_LISTED])
    if len(bad) > _MAX_LISTED:
        lines.append(f"... and {len(bad) - _MAX_LISTED} more")
    return ["\n".join(lines)]


def _measure(key: str, spec: Any, selected: Sequence[SpanRecord]) -> list[str]:
    each, aggregates = _split_metric(spec, key)
    get = VALUES[key]
    unit = pb.UNITS.get(key, "")
    problems: list[str] = []
    if each is not None:
        having = [r for r in selected if get(r) is not None]
        if not having:
            problems.append(f"no {key} values among {len(selected)} spans")
        problems += _each(
            having, pb.value_finder(key, each), f"{key} {each.describe()}{unit} expected"
        )
    if aggregates:
        values = [float(v) for v in map(get, selected) if v is not None]
        if not values:
            return [*problems, f"no {key} values among {len(selected)} spans"]
        for name, matcher in aggregates.items():
            result = pb.aggregate(name, values)
            if not matcher(result):
                worst = sorted(selected, key=lambda r: get(r) or 0, reverse=True)[:3]
                lines = [
                    f"{name} {key} = {pb.show(result, unit)}, expected {matcher.describe()}{unit}"
                    f" (over {len(values)} spans); highest:"
                ]
                lines.extend(f"{pb.show(get(r), unit)}: {_label(r)}" for r in worst)
                problems.append("\n".join(lines))
    return problems


Rows = list[tuple[pb.Finder, str]]
"""Finders for one ``expect`` key, each with what it expects (for the report)."""


def _status_rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
    wanted = str(value).lower()
    if wanted not in STATUS:
        raise ValueError("expect.status must be ok, error or unset")
    return [(pb.status_finder(wanted), f"status {wanted} expected")]


def _error_type_rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
    m = as_matcher(value)
    return [(pb.error_type_finder(m), f"error.type {m.describe()} expected")]


def _attributes_rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
    if not isinstance(value, Mapping):
        raise ValueError("expect.attributes must map names to matchers")
    matchers = {str(name): as_matcher(spec) for name, spec in value.items()}
    return [
        (pb.attribute_finder(n, m), f"{n} {m.describe()} expected") for n, m in matchers.items()
    ]


def _order_rows(relation: str) -> Callable[[Any, Index, Sequence[SpanRecord]], Rows]:
    def rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
        target = selector(value)
        others = [r for r in scope if target(r, index)]
        finder = pb.order_finder(relation, others, f"span with {target.describe()}")
        return [(finder, f"{relation} {target.describe()} expected")]

    return rows


def _parent_rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
    sel = selector(value)
    return [(pb.parent_finder(sel, index), f"a parent with {sel.describe()} expected")]


def _ancestor_rows(value: Any, index: Index, scope: Sequence[SpanRecord]) -> Rows:
    sel = selector(value)
    return [(pb.ancestor_finder(sel, index), f"an ancestor with {sel.describe()} expected")]


_PER_SPAN: Final[dict[str, Callable[[Any, Index, Sequence[SpanRecord]], Rows]]] = {
    "status": _status_rows,
    "error_type": _error_type_rows,
    "attributes": _attributes_rows,
    "before": _order_rows("before"),
    "after": _order_rows("after"),
    "parent": _parent_rows,
    "ancestor": _ancestor_rows,
}
"""``expect`` keys that hold for every selected span: the key's value → its finders."""


def _expect(
    check: Check, selected: list[SpanRecord], scope: Sequence[SpanRecord], index: Index
) -> list[str]:
    expect = check.expect
    problems: list[str] = []
    if not selected and "count" not in expect and not check.allow_empty:
        return [f"selected no {check.what}" + (f" ({check.said})" if check.said else "")]
    for key in (k for k in _EXPECT_ORDER if k in expect):
        value = expect[key]
        if key in _PER_SPAN:
            for finder, what in _PER_SPAN[key](value, index, scope):
                problems += _each(selected, finder, what)
        elif key in pb.MEASURES:
            problems += _measure(key, value, selected)
        elif key == "count":
            matcher = as_matcher(value)
            if not matcher(len(selected)):
                found = "\n".join(_label(r) for r in selected[:_MAX_LISTED])
                problems.append(
                    f"count = {len(selected)}, expected {matcher.describe()}"
                    + (f"\n{found}" if found else "")
                )
        elif key == "semconv" and value:
            semconv = pb.semconv_problems(selected)
            if semconv:
                problems.append("GenAI semantic-convention problems:\n" + "\n".join(semconv[:20]))
        elif key == "no_content" and value:
            content = pb.content_problems(selected)
            if content:
                problems.append("content recorded:\n" + "\n".join(content[:20]))
        elif key == "shape":
            outline = value["outline"] if isinstance(value, Mapping) else value
            strict = bool(value.get("strict")) if isinstance(value, Mapping) else False
            shape_index = index if check.per_trace is None else Index(scope)
            mismatch = _shape.match_shape(outline, shape_index, strict=strict)
            if mismatch:
                problems.append(mismatch)
    return problems


class Indexed(Protocol):
    """Anything holding an ``Index`` of spans: a ``TraceView``, a ``CaptureLLM``."""

    @property
    def _index(self) -> Index: ...


def evaluate(
    checks: Sequence[Check], view: Indexed | Index | Sequence[SpanRecord]
) -> list[CheckResult]:
    """Run each check on the spans (a ``TraceView``, an ``Index`` or records); one result each."""
    if isinstance(view, Index):
        index = view
    elif isinstance(view, Sequence):
        index = Index(view)
    else:
        index = view._index
    results = []
    for check in checks:
        result = CheckResult(check)
        if check.per_trace is None:
            groups: list[tuple[str, list[SpanRecord]]] = [("", index.records)]
        else:
            groups = []
            for trace_id in index.trace_ids():
                records = [r for r in index.records if r.trace_id == trace_id]
                if any(check.per_trace(r, index) for r in records):
                    groups.append((trace_id, records))
            if not groups and not check.allow_empty:
                said = check.per_trace.describe() or "any span"
                result.problems.append(f"no trace has a span with {said}")
        for trace_id, records in groups:
            selected = [r for r in records if check.select(r, index)]
            result.selected += len(selected)
            for problem in _expect(check, selected, records, index):
                result.problems.append(f"trace {trace_id}: {problem}" if trace_id else problem)
        results.append(result)
    return results
