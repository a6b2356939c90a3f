"""Selectors: which spans a query or a spec check is about, plus the parent/child index.

A selector is a dict (YAML in ``otel-llm check`` specs, keywords in Python) of fields
that must all hold; each value is a matcher spec (``otel_llm.testing.match``)::

    {"operation": "chat", "model": {"prefix": "llama"}, "parent": {"name": "invoke_agent x"}}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from otel_llm import semconv as sc
from otel_llm.testing._model import SpanRecord
from otel_llm.testing.match import Matcher, as_matcher

__all__ = ["FIELDS", "STATUS", "VALUES", "Index", "Selector", "selector"]

Key = tuple[str, str]


class Index:
    """Spans of one capture or export, with parent/child relations (start-time order)."""

    def __init__(self, records: Iterable[SpanRecord]) -> None:
        self.records: list[SpanRecord] = sorted(records, key=lambda r: (r.start_ns, r.end_ns))
        self.by_key: dict[Key, SpanRecord] = {(r.trace_id, r.span_id): r for r in self.records}
        self._children: dict[Key, list[SpanRecord]] = {}
        roots = []
        for record in self.records:
            parent = self.parent(record)
            if parent is None:
                roots.append(record)
            else:
                self._children.setdefault(key(parent), []).append(record)
        self.roots: list[SpanRecord] = roots
        self._descendants: dict[Key, list[SpanRecord]] = {}

    def parent(self, record: SpanRecord) -> SpanRecord | None:
        if record.parent_id is None:
            return None
        return self.by_key.get((record.trace_id, record.parent_id))

    def children(self, record: SpanRecord) -> list[SpanRecord]:
        return self._children.get(key(record), [])

    def ancestors(self, record: SpanRecord) -> list[SpanRecord]:
        """Nearest first."""
        out: list[SpanRecord] = []
        parent = self.parent(record)
        while parent is not None and len(out) < 10_000:
            out.append(parent)
            parent = self.parent(parent)
        return out

    def descendants(self, record: SpanRecord) -> list[SpanRecord]:
        """Depth-first pre-order: a subtree is one contiguous run."""
        cached = self._descendants.get(key(record))
        if cached is None:
            cached = []
            for child in self.children(record):
                cached.append(child)
                cached.extend(self.descendants(child))
            self._descendants[key(record)] = cached
        return cached

    def preorder(self) -> list[tuple[SpanRecord, int]]:
        """Every span with its depth, roots in start order, each followed by its subtree."""
        out: list[tuple[SpanRecord, int]] = []

        def walk(record: SpanRecord, depth: int) -> None:
            out.append((record, depth))
            for child in self.children(record):
                walk(child, depth + 1)

        for root in self.roots:
            walk(root, 0)
        return out

    def trace_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for record in self.records:
            seen.setdefault(record.trace_id, None)
        return list(seen)


def key(record: SpanRecord) -> Key:
    return (record.trace_id, record.span_id)


Test = Callable[[SpanRecord, Index], bool]


@dataclass(frozen=True)
class Selector:
    """All ``tests`` must hold; ``descriptions`` say what was asked, for messages."""

    tests: tuple[Test, ...] = ()
    descriptions: tuple[str, ...] = ()

    def __call__(self, record: SpanRecord, index: Index) -> bool:
        return all(test(record, index) for test in self.tests)

    def describe(self) -> str:
        return ", ".join(self.descriptions)

    def and_(self, other: Selector) -> Selector:
        return Selector(self.tests + other.tests, self.descriptions + other.descriptions)


def _attr(name: str) -> Callable[[SpanRecord], Any]:
    return lambda r: r.attributes.get(name)


STATUS: Final = {"ok": ("UNSET", "OK"), "error": ("ERROR",), "unset": ("UNSET",)}
"""``ok`` / ``error`` / ``unset`` as span status codes (``ok`` means "not ERROR")."""

VALUES: dict[str, Callable[[SpanRecord], Any]] = {
    "name": lambda r: r.name,
    "kind": lambda r: r.kind,
    "operation": _attr(sc.OPERATION_NAME),
    "model": _attr(sc.REQUEST_MODEL),
    "response_model": _attr(sc.RESPONSE_MODEL),
    "provider": _attr(sc.PROVIDER_NAME),
    "tool": _attr(sc.TOOL_NAME),
    "agent": _attr(sc.AGENT_NAME),
    "workflow": _attr(sc.WORKFLOW_NAME),
    "error_type": _attr(sc.ERROR_TYPE),
    "input_tokens": lambda r: r.input_tokens,
    "output_tokens": lambda r: r.output_tokens,
    "total_tokens": lambda r: r.total_tokens,
    "duration": lambda r: r.duration,
    "time_to_first_chunk": lambda r: r.time_to_first_chunk,
    "trace_id": lambda r: r.trace_id,
    "span_id": lambda r: r.span_id,
}
"""Fields a selector (or an ``expect``) can match with a value matcher."""

RELATIONS = ("parent", "ancestor", "child", "descendant", "not")
FIELDS = frozenset(VALUES) | {"llm", "status", "attributes", "attrs", "resource", *RELATIONS}


def _field_test(name: str, matcher: Matcher) -> Test:
    get = VALUES[name]
    if name == "kind":
        return lambda r, _: matcher(r.kind) or matcher(r.kind.lower())
    return lambda r, _: matcher(get(r))


def _status_test(value: Any) -> Test:
    wanted = str(value).lower()
    if wanted not in STATUS:
        raise ValueError(f"status must be one of ok, error, unset; got {value!r}")
    codes = STATUS[wanted]
    return lambda r, _: r.status in codes


def _mapping_tests(where: str, spec: Any) -> tuple[list[Test], list[str]]:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping of name: matcher, got {spec!r}")
    tests: list[Test] = []
    descriptions: list[str] = []
    for name, value in spec.items():
        matcher = as_matcher(value)
        tests.append(_value_test(str(name), matcher, resource=where == "resource"))
        descriptions.append(f"{name} {matcher.describe()}")
    return tests, descriptions


def _value_test(name: str, matcher: Matcher, *, resource: bool) -> Test:
    if resource:
        return lambda r, _: matcher(r.resource.get(name))
    return lambda r, _: matcher(r.attributes.get(name))


def _llm_test(flag: bool) -> Test:
    return lambda r, _: r.is_llm == flag


def _predicate_test(predicate: Callable[[SpanRecord], bool]) -> Test:
    return lambda r, _: bool(predicate(r))


def _relation_test(relation: str, inner: Selector) -> Test:
    if relation == "parent":

        def test(r: SpanRecord, index: Index) -> bool:
            parent = index.parent(r)
            return parent is not None and inner(parent, index)

        return test
    if relation == "not":
        return lambda r, index: not inner(r, index)
    related: Callable[[SpanRecord, Index], list[SpanRecord]] = {
        "ancestor": lambda r, index: index.ancestors(r),
        "child": lambda r, index: index.children(r),
        "descendant": lambda r, index: index.descendants(r),
    }[relation]
    return lambda r, index: any(inner(other, index) for other in related(r, index))


def selector(
    spec: Mapping[str, Any] | Selector | None = None,
    *predicates: Callable[[SpanRecord], bool],
    **fields: Any,
) -> Selector:
    """A ``Selector`` from a dict and/or keyword fields (None values are ignored)."""
    if isinstance(spec, Selector):
        base = spec
        spec = None
    else:
        base = Selector()
    merged: dict[str, Any] = dict(spec or {})
    merged.update({k: v for k, v in fields.items() if v is not None})
    tests: list[Test] = []
    descriptions: list[str] = []
    for name, value in merged.items():
        if name in VALUES:
            matcher = as_matcher(value)
            tests.append(_field_test(name, matcher))
            descriptions.append(f"{name} {matcher.describe()}")
        elif name == "llm":
            flag = bool(value)
            tests.append(_llm_test(flag))
            descriptions.append("LLM call" if flag else "not an LLM call")
        elif name == "status":
            tests.append(_status_test(value))
            descriptions.append(f"status {str(value).lower()}")
        elif name in ("attributes", "attrs", "resource"):
            more, said = _mapping_tests("resource" if name == "resource" else "attributes", value)
            tests.extend(more)
            descriptions.extend(said)
        elif name in RELATIONS:
            inner = selector(value)
            tests.append(_relation_test(name, inner))
            descriptions.append(f"{name} ({inner.describe() or 'any span'})")
        else:
            known = ", ".join(sorted(FIELDS))
            raise ValueError(f"unknown selector field {name!r} (known: {known})")
    for predicate in predicates:
        tests.append(_predicate_test(predicate))
        descriptions.append(getattr(predicate, "__name__", "predicate"))
    return base.and_(Selector(tuple(tests), tuple(descriptions)))
