"""``otel-llm check``: assert on exported LLM traces in CI.

::

    otel-llm check --spec llm-checks.yaml traces.jsonl            # OTLP JSON files
    otel-llm check --spec llm-checks.yaml --jaeger http://localhost:16686 --service my-app
    otel-llm check --spec llm-checks.yaml traces/ --junit-xml llm-checks.xml

Reads OTLP JSON (the collector's ``file`` exporter, ``opentelemetry-exporter-otlp-json-file``,
``otel_llm.testing.otlp_json``, saved Jaeger ``/api/v3`` answers) or queries Jaeger v2,
evaluates the spec (``otel_llm.testing.spec``, the engine ``assert_spec`` runs in
pytest), prints a report, and exits 0 (all checks passed), 1 (a check failed) or 2 (the
spec or the input could not be read). This package is the command line only: reading
spans (``sources``), reporting (``report``) and ``main``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from otel_llm.check.report import junit_xml, text_report
from otel_llm.check.sources import SourceError, dedupe, from_files, from_jaeger, parse_duration
from otel_llm.testing import SpanRecord
from otel_llm.testing.spec import Check, CheckResult, SpecError, evaluate, load_spec

__all__ = [
    "Check",
    "CheckResult",
    "Outcome",
    "SourceError",
    "SpecError",
    "evaluate",
    "load_spec",
    "main",
    "run",
]


@dataclass
class Outcome:
    """What one run found: the results, the spans they were computed on, where from."""

    results: list[CheckResult]
    records: list[SpanRecord]
    origin: str

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def run(spec: object, records: Sequence[SpanRecord], origin: str = "") -> Outcome:
    """Evaluate ``spec`` (path, YAML text, dict) on ``records``."""
    checks = load_spec(spec)
    return Outcome(evaluate(checks, list(records)), list(records), origin)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-llm check",
        description="Check exported LLM traces (OTLP JSON files or Jaeger) against a YAML spec.",
    )
    parser.add_argument(
        "sources", nargs="*", metavar="FILE", help="OTLP JSON files or directories; - reads stdin"
    )
    parser.add_argument("--spec", required=True, help="the YAML spec of checks")
    jaeger = parser.add_argument_group("Jaeger v2 (/api/v3)")
    jaeger.add_argument(
        "--jaeger", metavar="URL", help="query UI base URL, e.g. http://localhost:16686"
    )
    jaeger.add_argument("--service", help="service.name to search")
    jaeger.add_argument("--operation", help="span name to search (optional)")
    jaeger.add_argument("--since", default="1h", help="search window back from now (default 1h)")
    jaeger.add_argument("--limit", type=int, default=20, help="traces to fetch (default 20)")
    jaeger.add_argument(
        "--trace-id", action="append", default=[], help="fetch this trace (repeatable)"
    )
    jaeger.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    parser.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print failed checks and the summary only"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["check"]:
        args_in = args_in[1:]
    args = _parser().parse_args(args_in)
    if not args.sources and not args.jaeger:
        print("otel-llm check: give OTLP JSON files or --jaeger URL", file=sys.stderr)
        return 2
    try:
        checks = load_spec(args.spec)
        records: list[SpanRecord] = []
        origins = []
        if args.sources:
            records.extend(from_files(args.sources))
            origins.append(", ".join(args.sources))
        if args.jaeger:
            records.extend(
                from_jaeger(
                    args.jaeger,
                    service=args.service,
                    operation=args.operation,
                    since=parse_duration(args.since),
                    limit=args.limit,
                    trace_ids=args.trace_id,
                    timeout=args.timeout,
                )
            )
            origins.append(args.jaeger)
    except (SpecError, SourceError) as exc:
        print(f"otel-llm check: {exc}", file=sys.stderr)
        return 2
    records = dedupe(records)
    outcome = Outcome(evaluate(checks, records), records, " and ".join(origins))
    sys.stdout.write(
        text_report(outcome.results, outcome.records, outcome.origin, quiet=args.quiet)
    )
    if args.junit_xml:
        try:
            junit_xml(outcome.results, args.junit_xml, origin=outcome.origin)
        except OSError as exc:
            print(f"otel-llm check: cannot write {args.junit_xml}: {exc}", file=sys.stderr)
            return 2
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
