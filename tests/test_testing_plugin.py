"""The pytest plugin, run by pytest itself (pytester): fixtures, assertions, failure messages."""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import ollama
import pytest

import otel_llm
from otel_llm.testing import CaptureLLM, MockOllama, Scenario, ToolCall, lt, otlp_json, prefix
from otel_llm.testing._route import route_to

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
NO_NOISE = ("-p", "no:asyncio", "-p", "no:cacheprovider")
COUNT_FAILURE = (
    "LLM calls where operation = 'chat', model = 'llama3.2': expected exactly 1, found 2:"
)

APP = """
import ollama
import otel_llm


def rag(question, model="llama3.2"):
    client = ollama.Client()
    with otel_llm.workflow("answer"):
        with otel_llm.retrieval("docs"):
            client.embed(model="all-minilm", input=question)
        return client.chat(model=model, messages=[{"role": "user", "content": question}])


def agent_turn():
    client = ollama.Client()
    with otel_llm.workflow("w"), otel_llm.agent("a"):
        first = client.chat(
            model="qwen3:8b",
            messages=[{"role": "user", "content": "Weather in Tokyo?"}],
            tools=[{"type": "function", "function": {"name": "get_weather"}}],
        )
        for call in first.message.tool_calls or []:
            with otel_llm.tool(call.function.name):
                pass
        client.chat(model="qwen3:8b", messages=[{"role": "user", "content": "Thanks"}])
"""

MOCK = """
pytestmark = pytest.mark.mock_ollama(
    scenarios={
        "qwen3:8b": Scenario(tool_calls=[ToolCall("get_weather", {"city": "Tokyo"})]),
        "down": Scenario(status=503, error_message="overloaded"),
        "slow": Scenario(ttft=0.05),
    },
    models=["llama3.2", "all-minilm"],
)
"""

HEADER = f"""
import pytest
from otel_llm.testing import Scenario, ToolCall, lt, gt, prefix, regex
from app import rag, agent_turn
{MOCK}
"""


def _code_blocks(markdown: str) -> dict[str, str]:
    """The docs' Python blocks that start with a ``# file.py`` line, by file name."""
    blocks = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", markdown, re.S)
    return {name: body for name, body in blocks}


@pytest.fixture
def app(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(app=APP)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*NO_NOISE, *args)


class TestDocsExample:
    def test_passes_as_is(self, pytester: pytest.Pytester) -> None:
        """docs/testing.md's app.py and test_app.py, copied into a project, pass."""
        blocks = _code_blocks(DOCS.read_text())
        pytester.makepyfile(app=blocks["app.py"], test_app=blocks["test_app.py"])
        run(pytester).assert_outcomes(passed=1)

    def test_broken_app_fails_readably(self, pytester: pytest.Pytester) -> None:
        """The app asking twice fails with the count, the spans, and the trace file path."""
        blocks = _code_blocks(DOCS.read_text())
        line = next(x for x in blocks["app.py"].splitlines(True) if "client.chat(" in x)
        assert line in blocks["app.py"]
        broken = blocks["app.py"].replace(line, line * 2)
        pytester.makepyfile(app=broken, test_app=blocks["test_app.py"])
        result = run(pytester)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                f"E*AssertionError: {COUNT_FAILURE}",
                "E*[[]0[]] chat llama3.2  * in=5 out=4  ok",
                "E*[[]1[]] chat llama3.2  * in=5 out=4  ok",
                "E*captured trace ('>' marks the spans in question):",
                "E*invoke_workflow answer-question  *",
                "E*>   chat llama3.2  *",
                "*- otel_llm trace -*",
                "captured trace written to */llm-trace.otlp.json",
            ]
        )
        path = re.search(r"captured trace written to (\S+)", result.stdout.str())
        assert path is not None
        names = [r.name for r in otlp_json.read(path.group(1))]
        assert 2 == names.count("chat llama3.2")

    def test_documented_failure_matches(self) -> None:
        """The failure shown in the docs is the one the broken example produces."""
        text = DOCS.read_text()
        assert f"AssertionError: {COUNT_FAILURE}" in text


class TestFixtures:
    def test_registered(self, pytester: pytest.Pytester) -> None:
        """Installing the package is enough: fixtures, markers and the option are there."""
        fixtures = run(pytester, "--fixtures")
        fixtures.stdout.fnmatch_lines(["mock_ollama -- *", "llm_trace -- *"])
        markers = run(pytester, "--markers")
        markers.stdout.fnmatch_lines(["@pytest.mark.llm_trace(*", "@pytest.mark.mock_ollama(*"])
        run(pytester, "--help").stdout.fnmatch_lines(["*--llm-checks*"])

    def test_mock_scenarios_by_marker_file_and_param(self, app: pytest.Pytester) -> None:
        """Scenarios come from the marker, a file next to the test, or an indirect param."""
        app.path.joinpath("scenarios.yaml").write_text(
            "models:\n  llama3.2: {reply: from the file}\n"
        )
        app.makepyfile(
            test_inner_mock="""
            import os
            import ollama
            import openai
            import pytest
            from otel_llm.testing import Scenario

            ASK = [{"role": "user", "content": "hi"}]

            @pytest.mark.mock_ollama(default=Scenario(reply="from the marker"))
            def test_marker(mock_ollama):
                assert os.environ["OLLAMA_HOST"] == mock_ollama.host
                reply = ollama.Client().chat(model="llama3.2", messages=ASK)
                assert reply.message.content == "from the marker"
                assert mock_ollama.requests[-1].json()["model"] == "llama3.2"

            @pytest.mark.mock_ollama(file="scenarios.yaml")
            def test_file(mock_ollama):
                client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the fixture
                reply = client.chat.completions.create(model="llama3.2", messages=ASK)
                assert reply.choices[0].message.content == "from the file"

            @pytest.mark.parametrize(
                "mock_ollama",
                [Scenario(reply="one"), {"default": {"reply": "two"}}],
                indirect=True,
            )
            def test_param(mock_ollama):
                reply = ollama.Client().generate(model="llama3.2", prompt="x").response
                assert reply in ("one", "two")
            """
        )
        run(app).assert_outcomes(passed=4)

    def test_bad_marker_argument(self, app: pytest.Pytester) -> None:
        """A misspelt mock_ollama argument is a usage error naming the known ones."""
        app.makepyfile(
            test_inner_bad="""
            import pytest

            @pytest.mark.mock_ollama(scenario={})
            def test_x(mock_ollama):
                pass
            """
        )
        result = run(app)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*unknown argument(s) scenario (known: scenarios, models*"])

    def test_instrumentation_is_per_test(self, app: pytest.Pytester) -> None:
        """Each test gets a fresh capture; otel_llm is uninstrumented after it."""
        app.makepyfile(
            test_inner_fresh=HEADER
            + textwrap.dedent(
                """
            import otel_llm

            def test_one(mock_ollama, llm_trace):
                rag("one two")
                llm_trace.llm_calls().assert_count(2)

            def test_two(mock_ollama, llm_trace):
                assert otel_llm.is_instrumented()
                llm_trace.spans().assert_none()

            def test_three():
                assert not otel_llm.is_instrumented()
            """
            )
        )
        run(app).assert_outcomes(passed=3)


REDIRECT = """
import asyncio

import httpx
import ollama
import openai
import pytest
from otel_llm.testing import Scenario

ASK = [{"role": "user", "content": "hi"}]
ORIGINAL = (httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request)
# Built at import, before any fixture: the shapes apps use for a long-lived client.
DEFAULT_CLIENT = ollama.Client(host="127.0.0.1:11434")
DEFAULT_ASYNC = ollama.AsyncClient(host="localhost:11434")
DEFAULT_OPENAI = openai.OpenAI(base_url="http://localhost:11434/v1", api_key="x")
mocked = pytest.mark.mock_ollama(default=Scenario(reply="from the mock"))


@mocked
def test_module_level_ollama(mock_ollama):
    assert ollama.chat(model="llama3.2", messages=ASK).message.content == "from the mock"
    assert len(ollama.embed(model="all-minilm", input="hi").embeddings) == 1
    assert ["/api/chat", "/api/embed"] == [r.path for r in mock_ollama.requests]


@mocked
def test_module_level_openai(mock_ollama):
    reply = openai.chat.completions.create(model="llama3.2", messages=ASK)
    assert reply.choices[0].message.content == "from the mock"
    assert ["/v1/chat/completions"] == [r.path for r in mock_ollama.requests]


@mocked
def test_clients_built_before(mock_ollama):
    assert DEFAULT_CLIENT.chat(model="llama3.2", messages=ASK).message.content == "from the mock"
    reply = asyncio.run(DEFAULT_ASYNC.generate(model="llama3.2", prompt="x"))
    assert reply.response == "from the mock"
    done = DEFAULT_OPENAI.chat.completions.create(model="llama3.2", messages=ASK)
    assert done.choices[0].message.content == "from the mock"
    response = httpx.get("http://127.0.0.1:11434/api/version")
    assert 200 == response.status_code
    assert "http://127.0.0.1:11434/api/version" == str(response.request.url)
    assert 4 == len(mock_ollama.requests)


@mocked
def test_other_addresses_untouched(mock_ollama):
    real = ollama.Client(host=REAL_HOST)
    assert real.chat(model="llama3.2", messages=ASK).message.content == "from the real one"
    assert [] == mock_ollama.requests


@pytest.mark.mock_ollama(default=Scenario(reply="from the mock"), redirect=False)
def test_opt_out(mock_ollama):
    assert ollama.chat(model="llama3.2", messages=ASK).message.content == "from the real one"


def test_after_the_fixture():
    assert ollama.chat(model="llama3.2", messages=ASK).message.content == "from the real one"
    reply = openai.chat.completions.create(model="llama3.2", messages=ASK)
    assert reply.choices[0].message.content == "from the real one"
    assert ORIGINAL == (
        httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request
    )
"""


class TestRedirect:
    """The mock_ollama fixture reaches clients built before the test, and lets go after."""

    def test_reaches_existing_clients_and_restores(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Module-level ollama/openai calls and pre-built default-address clients hit the mock.

        A separate process imports ollama and openai with OLLAMA_HOST / OPENAI_BASE_URL
        pointing at a second server ("the real one"): module-level calls outside the
        fixture, and with ``redirect=False``, must still reach it.
        """
        with MockOllama(default=Scenario(reply="from the real one")) as real:
            monkeypatch.setenv("OLLAMA_HOST", real.host)
            monkeypatch.setenv("OPENAI_BASE_URL", f"{real.url}/v1")
            monkeypatch.setenv("OPENAI_API_KEY", "x")
            pytester.makepyfile(test_inner_redirect=f"REAL_HOST = {real.host!r}\n" + REDIRECT)
            result = pytester.runpytest_subprocess(*NO_NOISE)
        result.assert_outcomes(passed=6)

    def test_transport_twins_keep_their_signatures(self) -> None:
        """While routed, the sync and async transport methods take what httpx's take."""

        def shape(method: Callable[..., object]) -> list[tuple[str, object]]:
            return [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]

        sync, asyn = httpx.HTTPTransport, httpx.AsyncHTTPTransport
        before = (shape(sync.handle_request), shape(asyn.handle_async_request))
        with MockOllama() as mock, route_to(mock.url):
            during = (shape(sync.handle_request), shape(asyn.handle_async_request))
            assert inspect.iscoroutinefunction(asyn.handle_async_request)
        assert (before, before[0]) == (during, during[1])  # unchanged, and sync == async


ASSERTIONS = (
    HEADER
    + '''
import contextlib
import ollama


def down():
    with contextlib.suppress(ollama.ResponseError):
        rag("x", model="down")


def test_count_fails(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls(operation="chat").assert_count(3)


def test_count_passes(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls(operation="chat").assert_count(1)


def test_tokens_fails(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls(operation="chat").one().assert_tokens(output=lt(2))


def test_tokens_passes(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls(operation="chat").one().assert_tokens(input=2, output=lt(4000))


def test_attr_fails(mock_ollama, llm_trace):
    rag("Why blue")
    chat = llm_trace.llm_calls(operation="chat").one()
    chat.assert_attr("gen_ai.response.model", prefix("gpt"))


def test_attr_passes(mock_ollama, llm_trace):
    rag("Why blue")
    chat = llm_trace.llm_calls(operation="chat").one()
    chat.assert_attr("gen_ai.usage.input_tokens", gt=1).assert_attr("server.port")


def test_each_fails(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls().assert_attr("gen_ai.usage.output_tokens", gt=0)


def test_each_passes(mock_ollama, llm_trace):
    rag("Why blue")
    llm_trace.llm_calls().assert_attr("gen_ai.usage.input_tokens", ge=1)


def test_duration_fails(mock_ollama, llm_trace):
    rag("x", model="slow")
    llm_trace.llm_calls(model="slow").one().assert_duration(lt=0.01)


def test_duration_passes(mock_ollama, llm_trace):
    rag("x", model="slow")
    llm_trace.llm_calls(model="slow").one().assert_duration(gt=0.04, lt=5)


def test_percentile_fails(mock_ollama, llm_trace):
    rag("x")
    llm_trace.llm_calls().assert_percentile(95, lt=0.001)


def test_percentile_passes(mock_ollama, llm_trace):
    rag("x")
    llm_trace.llm_calls().assert_percentile(95, lt=5)


def test_ok_fails(mock_ollama, llm_trace):
    down()
    llm_trace.llm_calls(model="down").one().assert_ok()


def test_ok_passes(mock_ollama, llm_trace):
    down()
    llm_trace.llm_calls(model="down").one().assert_error(type="503", message="overloaded")


def test_error_type_fails(mock_ollama, llm_trace):
    down()
    llm_trace.llm_calls(model="down").one().assert_error(type="404")


def test_error_type_passes(mock_ollama, llm_trace):
    down()
    llm_trace.llm_calls(status="error").assert_error(type=regex("^5"))


def test_child_fails(mock_ollama, llm_trace):
    agent_turn()
    tool = llm_trace.tool_calls("get_weather").one()
    tool.assert_child_of(llm_trace.workflows("w").one())


def test_child_passes(mock_ollama, llm_trace):
    agent_turn()
    tool = llm_trace.tool_calls("get_weather").one()
    tool.assert_child_of(llm_trace.agents("a").one())


def test_shape_fails(mock_ollama, llm_trace):
    agent_turn()
    llm_trace.assert_shape("""
        invoke_workflow w
          invoke_agent a
            execute_tool search
    """)


def test_shape_passes(mock_ollama, llm_trace):
    agent_turn()
    llm_trace.assert_shape("""
        invoke_workflow w
          chat qwen3:8b [otel_llm.tool_calls.names=["get_weather"]]
          execute_tool get_weather
          chat qwen3:8b [gen_ai.usage.output_tokens<4000, status=ok]
    """)


def test_order_fails(mock_ollama, llm_trace):
    agent_turn()
    llm_trace.assert_shape("""
        invoke_agent a
          execute_tool get_weather
          chat qwen3:8b
          chat qwen3:8b
    """)


def test_order_passes(mock_ollama, llm_trace):
    agent_turn()
    llm_trace.tool_calls().assert_under({"agent": "a"})
'''
)

MESSAGES = {
    "count": "LLM calls where operation = 'chat': expected exactly 3, found 1:",
    "tokens": "expected output tokens < 2, got 9",
    "attr": "expected gen_ai.response.model starts with 'gpt', got 'llama3.2'",
    "each": "expected gen_ai.usage.output_tokens > 0 for every one of 2 LLM calls; 1 do not:",
    "duration": "expected a duration < 0.01 s, got ",
    "percentile": "expected p95 duration < 0.001 over 2 LLM calls; got ",
    "ok": "but its status is ERROR (error.type='503', 'overloaded')",
    "error_type": "expected error.type = '404', got '503'",
    "child": "expected to be a child of 'invoke_workflow w', but its parent is 'invoke_agent a'",
    "shape": "trace shape mismatch: no span matches line 3: `execute_tool search`",
    "order": "line 4 `chat qwen3:8b` has matching spans, but none in the expected place",
}


class TestFailures:
    def test_messages_and_passing_forms(self, app: pytest.Pytester) -> None:
        """Each failing assertion says what it expected and found; the true forms pass."""
        app.makepyfile(test_inner_assertions=ASSERTIONS)
        result = run(app)
        result.assert_outcomes(passed=len(MESSAGES), failed=len(MESSAGES))
        output = result.stdout.str()
        failed = sorted(re.findall(r"FAILED test_inner_assertions.py::test_(\w+)_fails", output))
        missing = [name for name, message in MESSAGES.items() if message not in output]
        assert (sorted(MESSAGES), []) == (failed, missing), output

    def test_trace_file_only_on_failure(self, app: pytest.Pytester) -> None:
        """A failing test leaves llm-trace.otlp.json in its tmp_path; a passing one does not."""
        app.makepyfile(
            test_inner_files=HEADER
            + textwrap.dedent(
                """
            def test_pass(mock_ollama, llm_trace):
                rag("x")

            def test_fail(mock_ollama, llm_trace):
                rag("x")
                assert False, "the app is wrong"
            """
            )
        )
        result = run(app, f"--basetemp={app.path / 'tmp'}")
        result.assert_outcomes(passed=1, failed=1)
        files = sorted(p.parent.name for p in (app.path / "tmp").rglob("llm-trace.otlp.json"))
        assert ["test_fail0"] == files
        result.stdout.fnmatch_lines(
            ["*the app is wrong*", "captured trace written to *test_fail0/llm-trace.otlp.json"]
        )


class TestLLMChecks:
    def test_semconv_problem(self, app: pytest.Pytester) -> None:
        """A hand-made LLM span without provider or model fails assert_semconv, naming both."""
        app.makepyfile(
            test_inner_semconv="""
            from opentelemetry import trace

            def test_bad_span(llm_trace):
                with trace.get_tracer("mine").start_as_current_span(
                    "chat gpt-x", attributes={"gen_ai.operation.name": "chat"}
                ):
                    pass
                llm_trace.assert_semconv()
            """
        )
        result = run(app)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "E*AssertionError: GenAI semantic-convention problems:",
                "E*chat gpt-x (span *): missing required gen_ai.provider.name",
                "E*chat gpt-x (span *): missing gen_ai.request.model (conditionally required *",
            ]
        )

    def test_content_policy(self, app: pytest.Pytester) -> None:
        """Content is recorded only with capture_content; assert_no_content catches it."""
        app.makepyfile(
            test_inner_content=HEADER
            + textwrap.dedent(
                """
            @pytest.mark.llm_trace(capture_content=True)
            def test_on(mock_ollama, llm_trace):
                rag("secret question")
                llm_trace.assert_content_policy()
                llm_trace.assert_no_content()

            def test_off(mock_ollama, llm_trace):
                rag("secret question")
                llm_trace.assert_no_content().assert_content_policy()
            """
            )
        )
        result = run(app)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "E*AssertionError: content was recorded although capture is off:",
                "E*chat llama3.2 (span *) records content: gen_ai.input.messages, *",
            ]
        )

    def test_metrics_consistency(self, app: pytest.Pytester) -> None:
        """Metrics agree with spans in both metric sets; an extra data point is caught."""
        app.makepyfile(
            test_inner_metrics=HEADER
            + textwrap.dedent(
                """
            def test_classic(mock_ollama, llm_trace):
                rag("Why blue")
                llm_trace.assert_metrics_consistent()
                output = {"gen_ai.token.type": "output"}
                assert llm_trace.metric_sum("gen_ai.client.token.usage", output) == 9
                assert llm_trace.metric_count("gen_ai.client.operation.duration") == 2

            @pytest.mark.llm_trace(latest_metrics=True)
            def test_latest(mock_ollama, llm_trace):
                rag("Why blue")
                llm_trace.assert_llm_checks()
                assert llm_trace.metric_sum("gen_ai.client.inference.usage.output_tokens") == 9

            def test_mismatch(mock_ollama, llm_trace):
                rag("Why blue")
                histogram = llm_trace.meter_provider.get_meter("x").create_histogram(
                    "gen_ai.client.operation.duration"
                )
                chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "llama3.2"}
                histogram.record(1.0, chat)
                llm_trace.assert_metrics_consistent()
            """
            )
        )
        result = run(app)
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(
            [
                "E*AssertionError: metrics disagree with the trace:",
                "E*chat llama3.2: calls (gen_ai.client.operation.duration count):"
                " spans say 1, metrics say 2",
            ]
        )

    def test_llm_checks_option_runs_at_teardown(self, app: pytest.Pytester) -> None:
        """--llm-checks checks every llm_trace test after it runs; the marker opts out."""
        app.makepyfile(
            test_inner_auto="""
            import pytest
            from opentelemetry import trace

            def make_bad_span():
                with trace.get_tracer("mine").start_as_current_span(
                    "chat x",
                    attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "x"},
                ):
                    pass

            def test_checked(llm_trace):
                make_bad_span()

            @pytest.mark.llm_trace(checks=False)
            def test_opted_out(llm_trace):
                make_bad_span()
            """
        )
        result = run(app, "--llm-checks")
        result.assert_outcomes(passed=2, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*ERROR at teardown of test_checked*",
                "E*chat x (span *): missing required gen_ai.provider.name",
            ]
        )
        run(app).assert_outcomes(passed=2)

    def test_spec_inside_a_test(self, app: pytest.Pytester) -> None:
        """llm_trace.assert_spec() runs an otel-llm check spec on the captured spans."""
        app.makepyfile(
            test_inner_spec=HEADER
            + textwrap.dedent(
                """
            SPEC = '''
            checks:
              - name: short answers
                expect: {output_tokens: {lte: 5}}
              - name: retrieval first
                per_trace: {workflow: answer}
                calls: {operation: embeddings}
                expect: {count: 1, before: {operation: chat}}
            '''

            def test_spec(mock_ollama, llm_trace):
                rag("Why is the sky blue?")
                llm_trace.assert_spec(SPEC)
            """
            )
        )
        result = run(app)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "E*AssertionError: 1 of 2 checks failed:",
                "E*FAIL  short answers  (2 spans)",
                "E*1 of 1 spans: output_tokens <= 5 expected",
            ]
        )

    def test_old_names_still_work(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """check() (deprecated) is assert_spec(); otel_llm.check.spec re-exports the engine."""
        from otel_llm.check import spec as old_home
        from otel_llm.testing import spec as new_home

        ollama.Client(host=mock_ollama.host).chat(model="llama3.2", messages=[])
        failing = {"checks": [{"name": "no calls", "expect": {"count": 0}}]}
        with (
            pytest.warns(DeprecationWarning, match="assert_spec"),
            pytest.raises(AssertionError, match="1 of 1 checks failed"),
        ):
            llm_trace.check(failing)
        names = ("Check", "CheckResult", "SpecError", "evaluate", "load_spec")
        assert [getattr(new_home, n) for n in names] == [getattr(old_home, n) for n in names]


class TestDeterminism:
    def test_snapshots_repeat(self, app: pytest.Pytester) -> None:
        """as_dicts(), shape() and collected metrics are identical across runs."""
        app.makepyfile(
            test_inner_snap=HEADER
            + textwrap.dedent(
                """
            import json

            @pytest.mark.parametrize("run", [1, 2])
            def test_snapshot(mock_ollama, llm_trace, run, tmp_path_factory):
                rag("Why blue")
                agent_turn()
                snapshot = {
                    "spans": llm_trace.as_dicts(),
                    "shape": llm_trace.shape(["gen_ai.usage.output_tokens"], status=True),
                }
                out = tmp_path_factory.getbasetemp() / f"snapshot{run}.json"
                out.write_text(json.dumps(snapshot, indent=1, sort_keys=True))
            """
            )
        )
        result = run(app, f"--basetemp={app.path / 'tmp'}")
        result.assert_outcomes(passed=2)
        first, second = ((app.path / "tmp" / f"snapshot{i}.json").read_text() for i in (1, 2))
        snapshot = json.loads(first)
        assert (first, 1, 1, "<volatile>") == (
            second,
            snapshot["spans"][0]["context"]["trace_id"],
            snapshot["spans"][0]["context"]["span_id"],
            next(s for s in snapshot["spans"] if s["name"] == "chat llama3.2")["attributes"][
                "server.port"
            ],
        )
        assert snapshot["shape"].startswith(
            "invoke_workflow answer [status=ok]\n  retrieval docs [status=ok]\n"
        )

    def test_fresh_process_installs_incremental_ids(self, app: pytest.Pytester) -> None:
        """Without a global provider the plugin installs one with ids 1, 2, 3, ..."""
        app.makepyfile(
            test_inner_ids=HEADER
            + textwrap.dedent(
                """
            def test_ids(mock_ollama, llm_trace):
                rag("x")
                assert llm_trace.deterministic_ids
                ids = [(s.trace_id, s.span_id) for s in llm_trace.spans()]
                assert ids[0] == ("0" * 31 + "1", "0" * 15 + "1")
                assert sorted(int(s, 16) for _, s in ids) == [1, 2, 3, 4]
            """
            )
        )
        result = app.runpytest_subprocess(*NO_NOISE)
        result.assert_outcomes(passed=1)


class TestQueries:
    """The query API on the repo's own run: the plugin's fixtures are installed here too."""

    @pytest.mark.mock_ollama(
        scenarios={
            "qwen3:8b": Scenario(
                reply="Sunny", tool_calls=[ToolCall("get_weather", {"city": "Tokyo"})]
            )
        }
    )
    def test_chain_queries(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """workflows/agents/tool_calls/retrievals and relations find the chain's spans."""
        client = ollama.Client()
        with otel_llm.workflow("trip"), otel_llm.agent("planner"):
            with otel_llm.retrieval("guides"):
                client.embed(model="all-minilm", input="Tokyo")
            reply = client.chat(
                model="qwen3:8b",
                messages=[{"role": "user", "content": "Weather?"}],
                tools=[{"type": "function", "function": {"name": "get_weather"}}],
            )
            with otel_llm.tool("get_weather"):
                pass
        agent = llm_trace.agents("planner").one()
        chat = llm_trace.llm_calls(operation="chat").one()
        assert (
            ["get_weather"],
            ["invoke_agent planner"],
            ["retrieval guides", "chat qwen3:8b", "execute_tool get_weather"],
            ["embeddings all-minilm"],
            1,
            "Sunny" if not reply.message.tool_calls else "tool",
        ) == (
            chat.requested_tools,
            [s.name for s in llm_trace.workflows("trip").one().children],
            agent.children.names,
            llm_trace.retrievals("guides").one().children.names,
            len(llm_trace.traces()),
            "tool",
        )
        chat.assert_child_of(agent).assert_descendant_of(llm_trace.workflows("trip").one())
        llm_trace.llm_calls(
            model=prefix("qwen"), attrs={"otel_llm.tool_calls.names": ["get_weather"]}
        ).one()
        llm_trace.spans(parent={"agent": "planner"}).assert_count(3)
        llm_trace.llm_calls().where(operation="embeddings").one().assert_tokens(input=1)
        llm_trace.llm_calls(provider="ollama").assert_count(2).assert_ok().assert_sum(
            "gen_ai.usage.input_tokens", lt(100)
        )
        llm_trace.retrievals().assert_before(llm_trace.tool_calls())
        keys = ["gen_ai.usage.output_tokens", "otel_llm.tool_calls.names", "gen_ai.request.model"]
        snapshot = llm_trace.shape(keys, status=True)
        llm_trace.assert_shape(snapshot, strict=True)  # a shape() snapshot matches itself
        assert snapshot.splitlines()[4] == (
            "    chat qwen3:8b [gen_ai.usage.output_tokens=1,"
            ' otel_llm.tool_calls.names=["get_weather"], gen_ai.request.model=qwen3:8b, status=ok]'
        )
        assert "chat qwen3:8b" == llm_trace.roots().one().descendants.where(llm=True)[1].name


class TestPublicNames:
    def test_exports_resolve(self) -> None:
        """Every name in otel_llm.testing.__all__ imports (lazily)."""
        import otel_llm.testing as testing

        missing = [name for name in testing.__all__ if getattr(testing, name, None) is None]
        assert [] == missing

    def test_matchers(self) -> None:
        """Plain values, matchers and the dict form agree; descriptions read naturally."""
        from otel_llm.testing.match import as_matcher, between, one_of, regex

        cases = [
            (as_matcher(4000), 4000, 4001, "= 4000"),
            (as_matcher({"lte": 4000}), 4000, 4001, "<= 4000"),
            (as_matcher({"prefix": "llama"}), "llama3.2", "qwen3", "starts with 'llama'"),
            (regex(r"^chat "), "chat x", "embeddings x", "matches /^chat /"),
            (between(1, 2), 1.5, 3, ">= 1 and <= 2"),
            (one_of("a", "b"), "b", "c", "in ['a', 'b']"),
            (as_matcher({"exists": False}), None, 1, "absent"),
            (as_matcher(["stop"]), ("stop",), ("length",), "= ['stop']"),
            (as_matcher(True), True, 1, "= true"),
            (as_matcher(503), "503", "504", "= 503"),
        ]
        results = [(m(good), m(bad), m.describe()) for m, good, bad, _ in cases]
        assert [(True, False, said) for *_, said in cases] == results

    def test_matcher_errors(self) -> None:
        """An unknown operator names the known ones."""
        from otel_llm.testing.match import as_matcher

        with pytest.raises(ValueError, match=r"unknown matcher operator 'below' \(known: contains"):
            as_matcher({"below": 3})
