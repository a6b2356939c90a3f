"""The pytest plugin (``pytest11`` entry point ``otel_llm``): ``llm_trace`` and ``mock_ollama``.

``llm_trace``
    A fresh ``CaptureLLM`` per test: otel_llm instrumented into in-memory spans and
    metrics, uninstrumented afterwards. Options with ``@pytest.mark.llm_trace(...)``:
    ``capture_content``, ``metrics``, ``checks`` (run ``assert_llm_checks()`` at
    teardown; also ``--llm-checks`` / ini ``otel_llm_checks``) and any
    ``otel_llm.instrument()`` keyword (``latest_metrics=True`` ...).

``mock_ollama``
    A ``MockOllama`` on 127.0.0.1 for the test, with ``OLLAMA_HOST`` (and, unless
    ``openai_env=False``, ``OPENAI_BASE_URL``/``OPENAI_API_KEY``) pointing at it for
    clients built in the test. Unless ``redirect=False``, clients built before it reach
    the mock too: ``ollama.chat(...)`` and the other module-level functions, openai's
    module client, and any httpx client addressed to Ollama's default address
    (``otel_llm.testing._route``); all undone after the test.
    Scenarios with ``@pytest.mark.mock_ollama(scenarios={...}, default=..., models=[...],
    file="scenarios.yaml")`` or ``@pytest.mark.parametrize("mock_ollama", [...],
    indirect=True)`` (a scenario-file dict, a file path, or a ``Scenario``).

When a test using ``llm_trace`` fails, its spans are written as OTLP JSON to
``<tmp_path>/llm-trace.otlp.json`` and the report shows the path and the trace outline.

Nothing heavy is imported until a fixture is used: this module loads in every pytest run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from otel_llm.testing._capture import CaptureLLM
    from otel_llm.testing.mock_ollama import MockOllama

__all__ = ["llm_trace", "mock_ollama"]

TRACE_FILE = "llm-trace.otlp.json"
_CAPTURE = pytest.StashKey["tuple[CaptureLLM, Path]"]()
_WRITTEN = pytest.StashKey[bool]()
_MOCK_KEYS = ("scenarios", "models", "default", "file", "openai_env", "listed", "redirect")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("otel_llm", "otel_llm LLM trace assertions")
    group.addoption(
        "--llm-checks",
        action="store_true",
        default=None,
        help="after each test using llm_trace, check GenAI semconv, content policy and metrics",
    )
    parser.addini(
        "otel_llm_checks",
        type="bool",
        default=False,
        help="run llm_trace.assert_llm_checks() after every test that uses llm_trace",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "llm_trace(capture_content=False, metrics=True, checks=None, **instrument_options):"
        " options of the llm_trace fixture (otel_llm)",
    )
    config.addinivalue_line(
        "markers",
        "mock_ollama(scenarios=None, default=None, models=None, file=None, openai_env=True,"
        " redirect=True):"
        " scenarios of the mock_ollama fixture (otel_llm)",
    )


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """Keyword arguments of every ``name`` marker, the closest (function) winning."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(name))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only")
        merged.update(marker.kwargs)
    return merged


def _mock_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config = _marker_kwargs(request, "mock_ollama")
    param = getattr(request, "param", None)
    if param is not None:
        from otel_llm.testing.mock_ollama import Scenario

        if isinstance(param, Scenario):
            config["default"] = param
        elif isinstance(param, (str, os.PathLike)):
            config["file"] = param
        elif isinstance(param, Mapping):
            config["file"] = dict(param)
        else:
            raise pytest.UsageError(
                "mock_ollama params are a Scenario, a scenario file path or its dict;"
                f" got {param!r}"
            )
    unknown = sorted(set(config) - set(_MOCK_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.mock_ollama: unknown argument(s) {', '.join(unknown)}"
            f" (known: {', '.join(_MOCK_KEYS)})"
        )
    return config


def _build_mock(request: pytest.FixtureRequest, config: Mapping[str, Any]) -> MockOllama:
    try:
        from otel_llm.testing import mock_ollama as mo
        from otel_llm.testing.mock_ollama._files import listed_models
    except ImportError as exc:  # pragma: no cover - uvicorn comes with otel-llm[testing]
        raise pytest.UsageError(
            f"the mock_ollama fixture needs `pip install 'otel-llm[testing]'` ({exc})"
        ) from exc
    source = config.get("file")
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_absolute():
        source = Path(request.node.path).parent / source
    base = (
        mo.load_scenarios(source)
        if source is not None
        else mo.ScenarioSet({}, mo.Scenario(), list(mo.DEFAULT_MODELS))
    )
    scenarios = dict(base.scenarios)
    for name, scenario in (config.get("scenarios") or {}).items():
        if isinstance(scenario, Mapping):
            scenario = mo.scenario_from_dict(scenario, f"scenarios[{name!r}]")
        scenarios[name] = scenario
    default = config.get("default", base.default)
    if isinstance(default, Mapping):
        default = mo.scenario_from_dict(default, "default")
    models = listed_models(config.get("models") or config.get("listed") or base.models, scenarios)
    return mo.MockOllama(scenarios, default=default, models=models)


@pytest.fixture
def mock_ollama(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MockOllama]:
    """A mock Ollama on 127.0.0.1 for this test, reached by clients old and new (``_route``)."""
    from otel_llm.testing._route import route_to

    config = _mock_config(request)
    mock = _build_mock(request, config)
    openai_env = config.get("openai_env", True)
    with mock, contextlib.ExitStack() as stack:
        if config.get("redirect", True):
            stack.enter_context(route_to(mock.url, openai=openai_env))
        monkeypatch.setenv("OLLAMA_HOST", mock.host)
        if openai_env:
            monkeypatch.setenv("OPENAI_BASE_URL", f"{mock.url}/v1")
            if not os.environ.get("OPENAI_API_KEY"):
                monkeypatch.setenv("OPENAI_API_KEY", "ollama")
        yield mock


@pytest.fixture
def llm_trace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CaptureLLM]:
    """Spans and GenAI metrics of this test, otel_llm instrumented; queries and assertions."""
    from otel_llm.testing._capture import capture

    options = _marker_kwargs(request, "llm_trace")
    checks = options.pop("checks", None)
    if checks is None:
        flag = request.config.getoption("--llm-checks")
        checks = bool(flag) if flag is not None else bool(request.config.getini("otel_llm_checks"))
    hosts = list(options.pop("ollama_hosts", None) or [])
    if "mock_ollama" in request.fixturenames:
        hosts.append(request.getfixturevalue("mock_ollama").host)
    with capture(ollama_hosts=hosts or None, **options) as cap:
        request.node.stash[_CAPTURE] = (cap, tmp_path)
        yield cap
        if checks:
            cap.assert_llm_checks()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    stored = item.stash.get(_CAPTURE, None)
    if stored is None or not report.failed or item.stash.get(_WRITTEN, False):
        return report
    cap, tmp_path = stored
    try:
        path = cap.write_otlp_json(tmp_path / TRACE_FILE)
        outline = cap.outline()
    except Exception as exc:  # never hide the test's own failure
        report.sections.append(("otel_llm trace", f"could not write the trace: {exc!r}"))
        return report
    item.stash[_WRITTEN] = True
    report.sections.append(
        (
            "otel_llm trace",
            f"captured trace written to {path}\n"
            f"  check it: otel-llm check --spec SPEC {path}\n{outline}",
        )
    )
    return report
