"""The trace view: LLM-aware queries and fluent assertions with readable failures.

``TraceView`` holds finished spans; queries (``spans``, ``llm_calls``, ``tool_calls``,
``agents``, ``workflows``, ``retrievals``) return a ``SpanSet``; ``one()`` and indexing
give a ``SpanView``. Every ``assert_*`` returns its receiver so assertions chain::

    llm_trace.llm_calls(operation="chat").assert_count(2).assert_ok().assert_tokens(output=lt(4000))
    chat = llm_trace.llm_calls(model="llama3.2").first
    chat.assert_child_of(llm_trace.agents("weather").one())

A failed assertion says what was asked, what was found, and prints the captured trace.
What each assertion checks lives in ``_problems`` (shared with the spec's ``expect``
keys); this module picks the spans and frames the failure.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from otel_llm import semconv as sc
from otel_llm.testing import _problems as pb
from otel_llm.testing import _shape
from otel_llm.testing._model import SpanRecord, seconds
from otel_llm.testing._problems import percentile
from otel_llm.testing._select import VALUES, Index, selector
from otel_llm.testing.match import Matcher, as_matcher, keyword_matcher

__all__ = ["SpanSet", "SpanView", "TraceView", "percentile"]

_MAX_OUTLINE = 60


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"


def summarize(record: SpanRecord) -> str:
    """``chat llama3.2  12.3 ms  in=4 out=3  ok``."""
    parts = [record.name, _seconds(record.duration)]
    attrs = record.attributes
    tokens = [
        f"{label}={attrs[key]}"
        for label, key in (
            ("in", sc.USAGE_INPUT_TOKENS),
            ("out", sc.USAGE_OUTPUT_TOKENS),
        )
        if key in attrs
    ]
    if tokens:
        parts.append(" ".join(tokens))
    if record.status == "ERROR":
        error = attrs.get(sc.ERROR_TYPE)
        parts.append(f"ERROR {error}" if error else "ERROR")
    else:
        parts.append("ok")
    return "  ".join(parts)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class _Base:
    """What a view of spans knows: the index (relations) and how to print the trace."""

    _idx: Index

    @property
    def _index(self) -> Index:
        return self._idx

    def outline(self, mark: Sequence[SpanRecord] = ()) -> str:
        """The captured spans as an indented tree with durations, tokens and status."""
        marked = {(r.trace_id, r.span_id) for r in mark}
        lines = []
        walk = self._index.preorder()
        for record, depth in walk[:_MAX_OUTLINE]:
            pointer = "> " if (record.trace_id, record.span_id) in marked else "  "
            lines.append(pointer + "  " * depth + summarize(record))
        if len(walk) > _MAX_OUTLINE:
            lines.append(f"  ... {len(walk) - _MAX_OUTLINE} more spans")
        return "\n".join(lines) if lines else "  (no spans captured)"

    def _fail(self, message: str, mark: Sequence[SpanRecord] = ()) -> AssertionError:
        return AssertionError(
            f"{message}\n\ncaptured trace ('>' marks the spans in question):\n{self.outline(mark)}"
        )


class SpanView(_Base):
    """One finished span, its relations, and assertions on it."""

    def __init__(self, record: SpanRecord, index: Index) -> None:
        self.record = record
        self._idx = index

    # -- data
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.record.attributes

    def __getitem__(self, name: str) -> Any:
        try:
            return self.record.attributes[name]
        except KeyError:
            known = ", ".join(sorted(self.record.attributes))
            raise KeyError(f"{self.name!r} has no attribute {name!r} (it has: {known})") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.record.attributes.get(name, default)

    @property
    def trace_id(self) -> str:
        return self.record.trace_id

    @property
    def span_id(self) -> str:
        return self.record.span_id

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def status(self) -> str:
        """``UNSET``, ``OK`` or ``ERROR``."""
        return self.record.status

    @property
    def ok(self) -> bool:
        return self.record.status != "ERROR"

    @property
    def error_type(self) -> str | None:
        return self.record.error_type

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.record.duration

    @property
    def is_llm(self) -> bool:
        return self.record.is_llm

    @property
    def operation(self) -> str | None:
        return _str(self.get(sc.OPERATION_NAME))

    @property
    def model(self) -> str | None:
        return _str(self.get(sc.REQUEST_MODEL))

    @property
    def provider(self) -> str | None:
        return _str(self.get(sc.PROVIDER_NAME))

    @property
    def input_tokens(self) -> int | None:
        return self.record.input_tokens

    @property
    def output_tokens(self) -> int | None:
        return self.record.output_tokens

    @property
    def total_tokens(self) -> int | None:
        return self.record.total_tokens

    @property
    def time_to_first_chunk(self) -> float | None:
        return self.record.time_to_first_chunk

    @property
    def requested_tools(self) -> list[str]:
        """Tool names the model asked for in this call (``otel_llm.tool_calls.names``)."""
        return list(self.get(sc.TOOL_CALL_NAMES, ()))

    # -- relations
    @property
    def parent(self) -> SpanView | None:
        parent = self._index.parent(self.record)
        return None if parent is None else SpanView(parent, self._index)

    @property
    def children(self) -> SpanSet:
        return SpanSet(self._index.children(self.record), self._index, f"children of {self.name!r}")

    @property
    def descendants(self) -> SpanSet:
        return SpanSet(
            self._index.descendants(self.record), self._index, f"descendants of {self.name!r}"
        )

    @property
    def ancestors(self) -> SpanSet:
        """Nearest first."""
        return SpanSet(
            self._index.ancestors(self.record), self._index, f"ancestors of {self.name!r}"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpanView) and other.record == self.record

    def __hash__(self) -> int:
        return hash((self.record.trace_id, self.record.span_id))

    def __repr__(self) -> str:
        return f"<SpanView {summarize(self.record)}>"

    # -- assertions
    def _require(self, ok: bool, message: str) -> SpanView:
        if not ok:
            raise self._fail(f"{summarize(self.record)}\n  {message}", [self.record])
        return self

    def assert_ok(self) -> SpanView:
        """Status is not ERROR."""
        error = self.error_type
        detail = f" (error.type={error!r}, {self.record.status_message!r})" if error else ""
        return self._require(
            self.ok, f"expected the span to succeed, but its status is ERROR{detail}"
        )

    def assert_error(self, type: Any = None, message: Any = None) -> SpanView:
        """Status is ERROR; ``type`` matches ``error.type``, ``message`` the status message."""
        self._require(not self.ok, "expected the span to fail, but its status is not ERROR")
        if type is not None:
            matcher = as_matcher(type)
            self._require(
                matcher(self.error_type),
                f"expected error.type {matcher.describe()}, got {self.error_type!r}",
            )
        if message is not None:
            matcher = as_matcher(message)
            text = self.record.status_message
            self._require(
                matcher(text), f"expected the status message {matcher.describe()}, got {text!r}"
            )
        return self

    def assert_attr(self, name: str, expected: Any = None, /, **ops: Any) -> SpanView:
        """``name`` matches ``expected`` (a value or matcher) and/or ``lt=``, ``prefix=``, ...

        With neither, the attribute must merely be present.
        """
        matcher = keyword_matcher(expected, **ops) or as_matcher({"exists": True})
        value = self.record.attributes.get(name)
        got = "it is missing" if name not in self.record.attributes else f"got {value!r}"
        return self._require(matcher(value), f"expected {name} {matcher.describe()}, {got}")

    def assert_attrs(self, expected: Mapping[str, Any]) -> SpanView:
        """Each attribute matches its value or matcher; all mismatches are reported at once."""
        wrong = []
        for name, spec in expected.items():
            matcher = as_matcher(spec)
            value = self.record.attributes.get(name)
            if not matcher(value):
                got = "missing" if name not in self.record.attributes else repr(value)
                wrong.append(f"{name}: expected {matcher.describe()}, got {got}")
        return self._require(not wrong, "attribute mismatch:\n    " + "\n    ".join(wrong))

    def assert_no_attr(self, name: str) -> SpanView:
        value = self.record.attributes.get(name)
        return self._require(
            name not in self.record.attributes, f"expected no {name}, got {value!r}"
        )

    def assert_tokens(self, input: Any = None, output: Any = None, total: Any = None) -> SpanView:
        """Token counts: each a value (equality) or a matcher (``lt(4000)``, ``{"lte": 4000}``)."""
        for label, matcher in _token_matchers(input, output, total):
            value = VALUES[f"{label}_tokens"](self.record)
            self._require(
                matcher(value), f"expected {label} tokens {matcher.describe()}, got {value!r}"
            )
        return self

    def assert_duration(self, expected: Any = None, /, **ops: Any) -> SpanView:
        """Duration in seconds: ``assert_duration(lt=2.0)`` or ``(between(0.1, 2))``."""
        matcher = keyword_matcher(expected, **ops)
        if matcher is None:
            raise TypeError("assert_duration needs a matcher, e.g. lt=2.0")
        return self._require(
            matcher(self.duration),
            f"expected a duration {matcher.describe()} s, got {self.duration:.6g} s",
        )

    def assert_child_of(self, parent: SpanView) -> SpanView:
        actual = self.parent
        got = "it is a root span" if actual is None else f"its parent is {actual.name!r}"
        return self._require(
            actual == parent, f"expected to be a child of {parent.name!r}, but {got}"
        )

    def assert_parent_of(self, child: SpanView) -> SpanView:
        child.assert_child_of(self)
        return self

    def assert_descendant_of(self, ancestor: SpanView) -> SpanView:
        chain = [a.name for a in self.ancestors]
        return self._require(
            ancestor in self.ancestors,
            f"expected to be under {ancestor.name!r}; its ancestors are {chain or 'none'}",
        )

    def assert_before(self, other: SpanView) -> SpanView:
        """This span ended before ``other`` started."""
        gap = seconds(other.record.start_ns - self.record.end_ns)
        return self._require(
            gap >= 0, f"expected to end before {other.name!r} starts; it ended {-gap:.6g} s after"
        )


class SpanSet(_Base, Sequence[SpanView]):
    """Spans picked by a query (start order); narrows further and asserts on them all."""

    def __init__(
        self, records: Sequence[SpanRecord], index: Index, description: str = "spans"
    ) -> None:
        self._records = list(records)
        self._idx = index
        self.description = description

    # -- sequence
    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, i: int) -> SpanView: ...
    @overload
    def __getitem__(self, i: slice) -> SpanSet: ...
    def __getitem__(self, i: int | slice) -> SpanView | SpanSet:
        if isinstance(i, slice):
            return SpanSet(self._records[i], self._index, self.description)
        return SpanView(self._records[i], self._index)

    def __iter__(self) -> Iterator[SpanView]:
        return (SpanView(r, self._index) for r in self._records)

    def __repr__(self) -> str:
        return f"<SpanSet {self.description}: {[r.name for r in self._records]}>"

    @property
    def records(self) -> list[SpanRecord]:
        return list(self._records)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._records]

    def values(self, name: str) -> list[Any]:
        """The attribute ``name`` of each span that has it."""
        return [r.attributes[name] for r in self._records if name in r.attributes]

    def sum(self, name: str) -> float:
        """Sum of a numeric attribute (``gen_ai.usage.output_tokens``) over the spans."""
        return sum(
            v for v in self.values(name) if isinstance(v, (int, float)) and not isinstance(v, bool)
        )

    @property
    def durations(self) -> list[float]:
        return [r.duration for r in self._records]

    def percentile(self, p: float, of: str = "duration") -> float:
        """Nearest-rank percentile of durations (or of a numeric attribute)."""
        values = self.durations if of == "duration" else [float(v) for v in self.values(of)]
        if not values:
            raise self._fail(f"no values for the {p:g}th percentile of {of} ({self.description})")
        return percentile(values, p)

    def where(
        self,
        spec: Mapping[str, Any] | None = None,
        *predicates: Callable[[SpanView], bool],
        **fields: Any,
    ) -> SpanSet:
        """Narrow with selector fields (``operation=``, ``attrs={...}``, ``parent={...}``)."""
        sel = selector(spec, *(_record_predicate(p, self._index) for p in predicates), **fields)
        picked = [r for r in self._records if sel(r, self._index)]
        said = sel.describe()
        joint = ", " if " where " in self.description else " where "
        return SpanSet(
            picked, self._index, f"{self.description}{joint}{said}" if said else self.description
        )

    # -- picking one
    def one(self) -> SpanView:
        """The only span; fails unless exactly one matched."""
        self.assert_count(1)
        return self[0]

    @property
    def first(self) -> SpanView:
        self.assert_count(min=1)
        return self[0]

    @property
    def last(self) -> SpanView:
        self.assert_count(min=1)
        return self[-1]

    # -- assertions
    def _listing(self) -> str:
        return (
            "\n".join(f"  [{i}] {summarize(r)}" for i, r in enumerate(self._records)) or "  (none)"
        )

    def assert_count(
        self, n: int | None = None, /, *, min: int | None = None, max: int | None = None
    ) -> SpanSet:
        """Exactly ``n``, or between ``min`` and ``max``."""
        count = len(self._records)
        ok = (
            (n is None or count == n)
            and (min is None or count >= min)
            and (max is None or count <= max)
        )
        if not ok:
            if n is not None:
                want = f"exactly {n}"
            elif max is None:
                want = f"at least {min}"
            elif min is None:
                want = f"at most {max}"
            else:
                want = f"between {min} and {max}"
            raise self._fail(
                f"{self.description}: expected {want}, found {count}:\n{self._listing()}",
                self._records,
            )
        return self

    def assert_any(self) -> SpanSet:
        return self.assert_count(min=1)

    def assert_none(self) -> SpanSet:
        return self.assert_count(0)

    def _each(self, *finders: pb.Finder, what: str) -> SpanSet:
        """Every span passes the finders (``_problems``); a span's problems are joined by ", "."""
        if not self._records:
            raise self._fail(f"expected {what} for {self.description}, but there are none")
        bad = []
        for i, record in enumerate(self._records):
            found = [p for f in finders for p in [f(record)] if p is not None]
            if found:
                bad.append((i, record, ", ".join(found)))
        if bad:
            lines = "\n".join(f"  [{i}] {summarize(r)}\n      {p}" for i, r, p in bad)
            raise self._fail(
                f"expected {what} for every one of {len(self)} {self.description};"
                f" {len(bad)} do not:\n{lines}",
                [r for _, r, _ in bad],
            )
        return self

    def assert_ok(self) -> SpanSet:
        """None of the spans has status ERROR."""
        return self._each(pb.status_finder("ok"), what="success")

    def assert_error(self, type: Any = None) -> SpanSet:
        matcher = None if type is None else as_matcher(type)
        finders = [pb.status_finder("error")]
        if matcher is not None:
            finders.append(pb.error_type_finder(matcher))
        return self._each(
            *finders,
            what="an error" + (f" with error.type {matcher.describe()}" if matcher else ""),
        )

    def assert_attr(self, name: str, expected: Any = None, /, **ops: Any) -> SpanSet:
        """Every span's ``name`` matches (presence only if no matcher is given)."""
        matcher = keyword_matcher(expected, **ops) or as_matcher({"exists": True})
        return self._each(pb.attribute_finder(name, matcher), what=f"{name} {matcher.describe()}")

    def assert_tokens(self, input: Any = None, output: Any = None, total: Any = None) -> SpanSet:
        """Every span's token counts (values or matchers)."""
        checks = _token_matchers(input, output, total)
        said = ", ".join(f"{label} tokens {m.describe()}" for label, m in checks)
        return self._each(
            *(pb.value_finder(f"{label}_tokens", m) for label, m in checks), what=said
        )

    def assert_duration(self, expected: Any = None, /, **ops: Any) -> SpanSet:
        """Every span's duration in seconds."""
        matcher = keyword_matcher(expected, **ops)
        if matcher is None:
            raise TypeError("assert_duration needs a matcher, e.g. lt=2.0")
        return self._each(
            pb.value_finder("duration", matcher), what=f"a duration {matcher.describe()} s"
        )

    def assert_percentile(
        self, p: float, expected: Any = None, /, of: str = "duration", **ops: Any
    ) -> SpanSet:
        """``assert_percentile(95, lt=2.0)``: the p95 duration (or attribute ``of``)."""
        matcher = keyword_matcher(expected, **ops)
        if matcher is None:
            raise TypeError("assert_percentile needs a matcher, e.g. lt=2.0")
        value = self.percentile(p, of)
        if not matcher(value):
            worst = sorted(self._records, key=lambda r: r.duration, reverse=True)[:3]
            raise self._fail(
                f"expected p{p:g} {of} {matcher.describe()} over {len(self)} {self.description};"
                f" got {value:.6g}\nslowest:\n" + "\n".join(f"  {summarize(r)}" for r in worst),
                worst,
            )
        return self

    def assert_sum(self, name: str, expected: Any = None, /, **ops: Any) -> SpanSet:
        """Sum of a numeric attribute: ``assert_sum("gen_ai.usage.output_tokens", lt=10_000)``."""
        matcher = keyword_matcher(expected, **ops)
        if matcher is None:
            raise TypeError("assert_sum needs a matcher, e.g. lt=10000")
        total = self.sum(name)
        if not matcher(total):
            raise self._fail(
                f"expected the sum of {name} over {len(self)} {self.description}"
                f" {matcher.describe()}; got {total:g}:\n{self._listing()}",
                self._records,
            )
        return self

    def assert_before(self, other: SpanSet) -> SpanSet:
        """Every span here ends before every span of ``other`` in the same trace starts."""
        finder = pb.order_finder("before", other.records, other.description)
        return self._each(finder, what=f"to end before {other.description}")

    def assert_under(self, ancestor: SpanView | Mapping[str, Any]) -> SpanSet:
        """Every span is a descendant of ``ancestor`` (a span, or a selector dict)."""
        if isinstance(ancestor, SpanView):
            finder = pb.ancestor_finder(ancestor.record, self._index)
            return self._each(finder, what=f"to be under {ancestor.name!r}")
        sel = selector(ancestor)
        finder = pb.ancestor_finder(sel, self._index)
        return self._each(finder, what=f"an ancestor with {sel.describe()}")


def _token_matchers(input: Any, output: Any, total: Any) -> list[tuple[str, Matcher]]:
    """``("input", matcher)`` ... for the token counts given (values or matchers)."""
    given = (("input", input), ("output", output), ("total", total))
    return [(label, as_matcher(spec)) for label, spec in given if spec is not None]


def _record_predicate(
    predicate: Callable[[SpanView], bool], index: Index
) -> Callable[[SpanRecord], bool]:
    def test(record: SpanRecord) -> bool:
        return bool(predicate(SpanView(record, index)))

    test.__name__ = getattr(predicate, "__name__", "predicate")
    return test


class TraceView(_Base):
    """Finished spans, queried by LLM meaning; built from a capture or an OTLP export."""

    def __init__(self, records: Sequence[SpanRecord] | Index) -> None:
        self._idx = records if isinstance(records, Index) else Index(records)

    @property
    def records(self) -> list[SpanRecord]:
        return list(self._index.records)

    def __len__(self) -> int:
        return len(self._index.records)

    def _select(
        self,
        what: str,
        base: Mapping[str, Any],
        spec: Mapping[str, Any] | None,
        predicates: Sequence[Callable[[SpanView], bool]],
        fields: Mapping[str, Any],
    ) -> SpanSet:
        sel = selector(
            {**base, **(spec or {})},
            *(_record_predicate(p, self._index) for p in predicates),
            **fields,
        )
        picked = [r for r in self._index.records if sel(r, self._index)]
        extra = selector(spec, **fields).describe()
        return SpanSet(picked, self._index, f"{what} where {extra}" if extra else what)

    def spans(
        self,
        spec: Mapping[str, Any] | None = None,
        *predicates: Callable[[SpanView], bool],
        **fields: Any,
    ) -> SpanSet:
        """Any spans: ``spans(name="chat llama3.2")``, ``spans({"attributes": {...}})``."""
        return self._select("spans", {}, spec, predicates, fields)

    def llm_calls(
        self,
        spec: Mapping[str, Any] | None = None,
        *predicates: Callable[[SpanView], bool],
        model: Any = None,
        operation: Any = None,
        provider: Any = None,
        **fields: Any,
    ) -> SpanSet:
        """LLM call spans (chat, text_completion, embeddings), optionally narrowed."""
        return self._select(
            "LLM calls",
            {"llm": True},
            spec,
            predicates,
            {"operation": operation, "model": model, "provider": provider, **fields},
        )

    def tool_calls(self, name: Any = None, **fields: Any) -> SpanSet:
        """``execute_tool`` spans (``otel_llm.tool``), by tool name."""
        return self._select(
            "tool spans", {"operation": "execute_tool"}, None, (), {"tool": name, **fields}
        )

    def agents(self, name: Any = None, **fields: Any) -> SpanSet:
        """``invoke_agent`` spans (``otel_llm.agent``), by agent name."""
        return self._select(
            "agent spans", {"operation": "invoke_agent"}, None, (), {"agent": name, **fields}
        )

    def workflows(self, name: Any = None, **fields: Any) -> SpanSet:
        """``invoke_workflow`` spans (``otel_llm.workflow``), by workflow name."""
        return self._select(
            "workflow spans",
            {"operation": "invoke_workflow"},
            None,
            (),
            {"workflow": name, **fields},
        )

    def retrievals(self, name: Any = None, **fields: Any) -> SpanSet:
        """``retrieval`` spans (``otel_llm.retrieval``), by data source."""
        attrs = None if name is None else {sc.DATA_SOURCE_ID: name}
        return self._select(
            "retrieval spans", {"operation": "retrieval"}, None, (), {"attrs": attrs, **fields}
        )

    def roots(self) -> SpanSet:
        return SpanSet(self._index.roots, self._index, "root spans")

    def traces(self) -> list[SpanSet]:
        """One ``SpanSet`` per trace id, in order of first start."""
        return [
            SpanSet(
                [r for r in self._index.records if r.trace_id == t],
                self._index,
                f"spans of trace {t}",
            )
            for t in self._index.trace_ids()
        ]

    # -- shape
    def shape(self, attrs: Sequence[str] = (), *, status: bool = False) -> str:
        """The trace as an outline of span names (``attrs`` listed in brackets): a snapshot."""
        return _shape.render_shape(self._index, attrs, status=status)

    def assert_shape(self, expected: str, *, strict: bool = False) -> TraceView:
        """The trace contains this outline (see ``otel_llm.testing._shape`` for the syntax)."""
        problem = _shape.match_shape(expected, self._index, strict=strict)
        if problem is not None:
            raise AssertionError(problem)
        return self

    # -- LLM checks
    def assert_semconv(self, *, allow_legacy: bool = False) -> TraceView:
        """Every LLM span carries the GenAI semconv required / conditionally required attributes."""
        problems = pb.semconv_problems(self._index.records, allow_legacy=allow_legacy)
        if problems:
            raise self._fail("GenAI semantic-convention problems:\n  " + "\n  ".join(problems))
        return self

    def assert_no_content(self) -> TraceView:
        """No prompt or completion text on any span or event."""
        problems = pb.content_problems(self._index.records)
        if problems:
            raise self._fail(
                "content was recorded although capture is off:\n  " + "\n  ".join(problems)
            )
        return self

    def assert_spec(self, spec: Any) -> TraceView:
        """Every check of a spec (path, YAML text or dict; ``otel_llm.testing.spec``) passes."""
        from otel_llm.testing.spec import evaluate, load_spec

        results = evaluate(load_spec(spec), self._index)
        failed = [r for r in results if not r.passed]
        if failed:
            raise AssertionError(
                f"{len(failed)} of {len(results)} checks failed:\n"
                + "\n".join(r.render() for r in failed)
            )
        return self

    def check(self, spec: Any) -> TraceView:
        """Deprecated name of ``assert_spec``."""
        warnings.warn(
            "TraceView.check(spec) is now assert_spec(spec)", DeprecationWarning, stacklevel=2
        )
        return self.assert_spec(spec)
