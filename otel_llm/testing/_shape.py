"""Trace shapes: an indented outline of span names with chosen attributes, and matching it.

::

    invoke_workflow answer-question
      retrieval docs
        embeddings all-minilm
      chat llama3.2 [gen_ai.usage.output_tokens<=4000, status=ok]

Two spaces (any consistent indent) per level. ``[...]`` holds attribute tests:
``=`` (equality), ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``^=`` (prefix), ``~=`` (regex);
values are JSON-ish (``9``, ``true``, ``"a, b"``, ``["stop"]``) or bare words. ``status``
(``ok`` = not ERROR, ``error``, ``unset``) and ``kind`` are pseudo-attributes. A name
with ``*`` is a glob. Lines starting with ``#`` are comments; line numbers in messages
count from the first line that is not blank.

Unless ``strict``, spans not listed are ignored: a listed child may sit deeper under its
listed parent, and listed siblings must appear in start order. ``strict`` wants the
exact tree (every span listed; listed attributes still the only ones compared).
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from otel_llm.testing._model import SpanRecord
from otel_llm.testing._select import Index
from otel_llm.testing.match import Matcher, eq, ge, gt, le, lt, ne, prefix, regex

__all__ = ["ShapeError", "match_shape", "parse_shape", "render_shape"]

_BARE = re.compile(r"^[A-Za-z_][\w.:/@+-]*$")
_KEY = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*(!=|<=|>=|\^=|~=|=|<|>)\s*")
_OPS: dict[str, Callable[[Any], Matcher]] = {
    "=": eq,
    "!=": ne,
    "<": lt,
    "<=": le,
    ">": gt,
    ">=": ge,
    "^=": prefix,
    "~=": regex,
}
_STATUS = {"UNSET": "unset", "OK": "ok", "ERROR": "error"}


class ShapeError(ValueError):
    """The expected outline could not be parsed."""


@dataclass
class Node:
    name: str
    tests: list[tuple[str, Matcher]]
    line: int
    text: str
    children: list[Node] = field(default_factory=list)

    def keys(self) -> set[str]:
        out = {k for k, _ in self.tests}
        for child in self.children:
            out |= child.keys()
        return out


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str) and _BARE.match(value) and value not in ("true", "false", "null"):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


def _value(text: str) -> Any:
    text = text.strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _split_value(body: str, start: int) -> tuple[str, int]:
    """The value text starting at ``start`` up to the next top-level comma."""
    depth, quoted, i = 0, False, start
    while i < len(body):
        char = body[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            break
        i += 1
    return body[start:i], i + 1


def _tests(body: str, line: int) -> list[tuple[str, Matcher]]:
    tests: list[tuple[str, Matcher]] = []
    pos = 0
    while pos < len(body):
        if not body[pos:].strip():
            break
        found = _KEY.match(body, pos)
        if found is None:
            raise ShapeError(f"line {line}: cannot read attribute test in [{body}]")
        name, op = found.group(1), found.group(2)
        raw, pos = _split_value(body, found.end())
        value = _value(raw)
        if op in ("^=", "~=") and not isinstance(value, str):
            value = raw.strip()
        if op in ("<", "<=", ">", ">=") and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise ShapeError(f"line {line}: {name}{op} needs a number, got {raw.strip()!r}")
        tests.append((name, _OPS[op](value)))
    return tests


def parse_shape(text: str) -> list[Node]:
    """The outline as a forest of ``Node``s."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    for number, raw in enumerate(textwrap.dedent(text).strip("\n").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ShapeError(f"line {number}: indent with spaces, not tabs")
        indent = len(raw) - len(raw.lstrip())
        body = raw.strip()
        tests: list[tuple[str, Matcher]] = []
        if body.endswith("]") and " [" in body:
            name, _, inner = body[:-1].rpartition(" [")
            body = name.rstrip()
            tests = _tests(inner, number)
        node = Node(body, tests, number, raw.strip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif roots and indent > 0 and not stack:
            raise ShapeError(f"line {number}: indented deeper than any line above")
        else:
            roots.append(node)
        stack.append((indent, node))
    if not roots:
        raise ShapeError("the expected shape is empty")
    return roots


def _pseudo(record: SpanRecord, name: str) -> Any:
    if name == "status":
        return "error" if record.status == "ERROR" else "ok"
    if name == "kind":
        return record.kind.lower()
    return record.attributes.get(name)


def node_matches(node: Node, record: SpanRecord) -> bool:
    if any(c in node.name for c in "*?"):
        if not fnmatchcase(record.name, node.name):
            return False
    elif record.name != node.name:
        return False
    return all(_test(record, name, matcher) for name, matcher in node.tests)


def _test(record: SpanRecord, name: str, matcher: Matcher) -> bool:
    if name == "status":  # ok = not ERROR (UNSET or OK); unset and error are exact
        return matcher(_pseudo(record, name)) or matcher(_STATUS.get(record.status))
    return bool(matcher(_pseudo(record, name)))


def _embed(
    nodes: Sequence[Node],
    candidates: Sequence[SpanRecord],
    index: Index,
    memo: dict[tuple[int, int], bool] | None = None,
) -> bool:
    """Ordered embedding: each node on a candidate whose subtree holds the node's children.

    Memoized on (node list, candidate list) and, inside, on (node, position): polynomial
    even for long runs of identical spans.
    """
    memo = {} if memo is None else memo
    key = (id(nodes), id(candidates))
    if key in memo:
        return memo[key]
    seen: dict[tuple[int, int], bool] = {}

    def go(i: int, start: int) -> bool:
        if i == len(nodes):
            return True
        if (i, start) in seen:
            return seen[(i, start)]
        found = False
        for j in range(start, len(candidates)):
            record = candidates[j]
            if not node_matches(nodes[i], record):
                continue
            below = index.descendants(record)
            if _embed(nodes[i].children, below, index, memo) and go(i + 1, j + 1 + len(below)):
                found = True
                break
        seen[(i, start)] = found
        return found

    memo[key] = result = go(0, 0)
    return result


def _strict(nodes: Sequence[Node], records: Sequence[SpanRecord], index: Index) -> bool:
    return len(nodes) == len(records) and all(
        node_matches(n, r) and _strict(n.children, index.children(r), index)
        for n, r in zip(nodes, records, strict=True)
    )


def render_shape(
    index: Index,
    attrs: Iterable[str] = (),
    *,
    status: bool = False,
    records: Iterable[SpanRecord] | None = None,
) -> str:
    """The outline of ``index`` (or of the subtrees of ``records``) with ``attrs`` listed."""
    keys = list(attrs)
    lines = []
    if records is None:
        walk = index.preorder()
    else:
        walk = []
        for root in records:
            walk.append((root, 0))
            base = len(index.ancestors(root)) + 1
            walk.extend((r, len(index.ancestors(r)) - base + 1) for r in index.descendants(root))
    for record, depth in walk:
        shown = [
            f"{k}={format_value(_pseudo(record, k))}"
            for k in keys
            if k not in ("status", "kind") and k in record.attributes
        ]
        if "kind" in keys:
            shown.append(f"kind={record.kind.lower()}")
        if status or "status" in keys:
            shown.append(f"status={_pseudo(record, 'status')}")
        suffix = f" [{', '.join(shown)}]" if shown else ""
        lines.append("  " * depth + record.name + suffix)
    return "\n".join(lines)


def _preorder_prefix(nodes: Sequence[Node], count: int) -> list[Node]:
    """The first ``count`` lines of the outline (pre-order), as a tree."""
    remaining = [count]

    def cut(level: Sequence[Node]) -> list[Node]:
        out = []
        for node in level:
            if remaining[0] <= 0:
                break
            remaining[0] -= 1
            out.append(Node(node.name, node.tests, node.line, node.text, cut(node.children)))
        return out

    return cut(nodes)


def _flatten(nodes: Sequence[Node]) -> list[Node]:
    out = []
    for node in nodes:
        out.append(node)
        out.extend(_flatten(node.children))
    return out


def match_shape(expected: str, index: Index, *, strict: bool = False) -> str | None:
    """None if ``index`` has the expected shape, else a readable explanation."""
    nodes = parse_shape(expected)
    candidates = [record for record, _ in index.preorder()]
    if strict:
        if _strict(nodes, index.roots, index):
            return None
        problem = "the trace is not exactly this shape (strict: every span must be listed)"
    else:
        if _embed(nodes, candidates, index):
            return None
        problem = "the trace does not contain this shape"
        for count, node in enumerate(_flatten(nodes), 1):
            if not any(node_matches(node, r) for r in candidates):
                problem = f"no span matches line {node.line}: `{node.text}`"
                break
            if not _embed(_preorder_prefix(nodes, count), candidates, index):
                problem = (
                    f"line {node.line} `{node.text}` has matching spans, but none in the"
                    " expected place (check its parent and the order of its siblings)"
                )
                break
    keys = set()
    for node in nodes:
        keys |= node.keys()
    want = "\n".join("  " * _depth(n, nodes) + n.text for n in _flatten(nodes))
    got = render_shape(index, sorted(k for k in keys if k != "status"), status="status" in keys)
    diff = "\n".join(
        difflib.unified_diff(
            want.splitlines(), got.splitlines(), "expected", "actual", lineterm="", n=2
        )
    )
    return (
        f"trace shape mismatch: {problem}\n\nexpected:\n{textwrap.indent(want, '  ')}\n\n"
        f"actual:\n{textwrap.indent(got or '(no spans)', '  ')}\n\ndiff:\n{diff}"
    )


def _depth(target: Node, nodes: Sequence[Node], depth: int = 0) -> int:
    for node in nodes:
        if node is target:
            return depth
        found = _depth(target, node.children, depth + 1)
        if found >= 0:
            return found
    return -1
