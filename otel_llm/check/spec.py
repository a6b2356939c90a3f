"""Deprecated home of the spec engine: it is ``otel_llm.testing.spec`` now (same names)."""

from __future__ import annotations

from otel_llm.testing.spec import Check, CheckResult, SpecError, evaluate, load_spec

__all__ = ["Check", "CheckResult", "SpecError", "evaluate", "load_spec"]
