"""Reports of an ``otel-llm check`` run: readable text, and JUnit XML for CI systems."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from otel_llm.testing import SpanRecord
from otel_llm.testing.spec import CheckResult

__all__ = ["junit_xml", "text_report"]


def _inventory(records: Sequence[SpanRecord]) -> str:
    traces = len({r.trace_id for r in records})
    calls = sum(1 for r in records if r.is_llm)
    return f"{len(records)} spans ({calls} LLM calls) in {traces} traces"


def text_report(
    results: Sequence[CheckResult],
    records: Sequence[SpanRecord],
    origin: str,
    *,
    quiet: bool = False,
) -> str:
    """``PASS``/``FAIL`` per check with the reasons, closed by ``N passed, N failed``."""
    lines = [f"otel-llm check: {_inventory(records)}" + (f" from {origin}" if origin else "")]
    for result in results:
        if quiet and result.passed:
            continue
        lines.append(result.render())
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def junit_xml(
    results: Sequence[CheckResult], path: str | os.PathLike[str], origin: str = ""
) -> Path:
    """One ``<testcase>`` per check; a failed check carries a ``<failure>`` with its reasons."""
    failed = sum(1 for r in results if not r.passed)
    suites = ET.Element("testsuites", tests=str(len(results)), failures=str(failed), errors="0")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="otel-llm check",
        tests=str(len(results)),
        failures=str(failed),
        errors="0",
        skipped="0",
        time="0",
    )
    if origin:
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="source", value=origin)
    for result in results:
        case = ET.SubElement(
            suite, "testcase", classname="otel-llm check", name=result.check.name, time="0"
        )
        if not result.passed:
            first = result.problems[0].splitlines()[0]
            failure = ET.SubElement(case, "failure", message=first, type="CheckFailed")
            failure.text = "\n\n".join(result.problems)
    target = Path(path)
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(target, encoding="utf-8", xml_declaration=True)
    return target
