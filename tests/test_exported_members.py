"""The public door: ``__all__`` is exactly what the packages export (as httpx tests it)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import otel_llm
import otel_llm.testing


def _public(module: types.ModuleType) -> list[str]:
    """Names a star-import would want: not private, not a submodule."""
    return sorted(
        name
        for name, value in vars(module).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
    )


def test_otel_llm_all_is_what_it_exports() -> None:
    """Every public name of otel_llm is in __all__, sorted, and nothing else is."""
    assert sorted(otel_llm.__all__) == otel_llm.__all__
    assert otel_llm.__all__ == _public(otel_llm)


def test_otel_llm_names_users_import() -> None:
    """The names applications import from otel_llm stay put."""
    assert [
        "LLMCall",
        "LLMInstrumentor",
        "Redactor",
        "__version__",
        "agent",
        "instrument",
        "is_instrumented",
        "retrieval",
        "tags",
        "tool",
        "uninstrument",
        "workflow",
    ] == otel_llm.__all__


def test_testing_all_is_what_it_exports() -> None:
    """otel_llm.testing loads lazily; once every name is asked for, __all__ is the whole door."""
    for name in otel_llm.testing.__all__:
        getattr(otel_llm.testing, name)
    assert sorted(otel_llm.testing.__all__) == otel_llm.testing.__all__
    assert otel_llm.testing.__all__ == _public(otel_llm.testing)


def test_core_does_not_import_the_testing_kit(tmp_path: Path) -> None:
    """Importing otel_llm and building its exporters never loads otel_llm.testing."""

    code = (
        "import sys, otel_llm, otel_llm._setup as s\n"
        "s.span_exporters('otlp_json_file,console')\n"
        "print(sorted(m for m in sys.modules if m.startswith('otel_llm.testing')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OTEL_LLM_TRACES_FILE": str(tmp_path / "t.jsonl")},
    )
    assert "[]" == out.stdout.strip()
