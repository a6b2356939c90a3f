"""`otel-llm check`: OTLP JSON from real exporters, recorded Jaeger v3 answers, the spec."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import ollama
import pytest

from otel_llm.check import main as check_main
from otel_llm.testing import capture, otlp_json
from otel_llm.testing._model import SpanRecord, from_readable
from otel_llm.testing._problems import percentile
from otel_llm.testing._select import Index, selector
from otel_llm.testing.mock_ollama import MockOllama
from otel_llm.testing.spec import SpecError, evaluate, load_spec

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
SPEC = DATA / "llm-checks.yaml"
JSON_FILE_EXPORT = DATA / "otlp-json-file-exporter.jsonl"  # opentelemetry-exporter-otlp-json-file
JAEGER_FIND = DATA / "jaeger-v3-find-traces.json"  # GET /api/v3/traces?query...
JAEGER_NOT_FOUND = DATA / "jaeger-v3-not-found.json"
FAILING = "every chat call succeeds"  # the one check sample_app fails (a 503 on purpose)

EXPORT_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[3])
from otel_llm.testing.otlp_json import install
install(sys.argv[1])
import otel_llm, sample_app
otel_llm.instrument(metrics=False)
sample_app.run(sys.argv[2])
"""


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = check_main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def passing_spec(tmp_path: Path) -> Path:
    """SPEC without the check sample_app fails on purpose."""
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    spec["checks"] = [c for c in spec["checks"] if c["name"] != FAILING]
    path = tmp_path / "passing.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama.from_file(DATA / "scenarios.yaml") as server:
        yield server


@pytest.fixture(scope="module")
def exported(mock: MockOllama, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_app run in its own process, exporting through OTLPJsonFileSpanExporter."""
    path = tmp_path_factory.mktemp("export") / "traces.jsonl"
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "sample-app",
        "OTEL_METRICS_EXPORTER": "none",
        "OLLAMA_HOST": mock.host,
    }
    args = [sys.executable, "-c", EXPORT_SCRIPT, str(path), mock.url, str(DATA)]
    subprocess.run(args, env=env, cwd=ROOT, check=True, timeout=120)
    return path


def records_of(path: Path) -> list[SpanRecord]:
    return otlp_json.read(path)


class TestOTLPJson:
    def test_round_trip_equals_sdk_spans(self, mock: MockOllama) -> None:
        """Spans written by the exporter read back equal to the SDK spans themselves."""
        import io

        stream = io.StringIO()
        with capture(ollama_hosts=[mock.host]) as cap:
            ollama.Client(host=mock.url).chat(
                model="qwen3:8b",
                messages=[{"role": "user", "content": "Weather?"}],
                tools=[{"type": "function", "function": {"name": "get_weather"}}],
            )
        exporter = otlp_json.OTLPJsonFileSpanExporter(stream=stream)
        exporter.export(cap.readable_spans)
        assert [from_readable(s) for s in cap.readable_spans] == otlp_json.read_text(
            stream.getvalue()
        )

    def test_lines_are_otlp_json(self, exported: Path) -> None:
        """Each line is an ExportTraceServiceRequest with hex ids and integer enums."""
        first = json.loads(exported.read_text().splitlines()[0])
        span = first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert (32, 16, int, str) == (
            len(span["traceId"]),
            len(span["spanId"]),
            type(span["kind"]),
            type(span["startTimeUnixNano"]),
        )

    def test_three_writers_one_reading(self, exported: Path) -> None:
        """Our exporter, opentelemetry-exporter-otlp-json-file and Jaeger read to the same trace."""
        shapes = {
            name: _shape(records)
            for name, records in (
                ("otel_llm", records_of(exported)),
                ("otlp-json-file", records_of(JSON_FILE_EXPORT)),
                ("jaeger", records_of(JAEGER_FIND)),
            )
        }
        assert 1 == len(set(shapes.values())), shapes

    def test_entry_point_exporter(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`OTEL_TRACES_EXPORTER=otlp_json_file` is our exporter; it writes OTEL_LLM_TRACES_FILE."""
        from importlib.metadata import entry_points

        (entry,) = entry_points(group="opentelemetry_traces_exporter", name="otlp_json_file")
        monkeypatch.setenv("OTEL_LLM_TRACES_FILE", str(tmp_path / "out" / "t.jsonl"))
        exporter = entry.load()()
        with capture() as cap:
            import otel_llm

            with otel_llm.workflow("w"):
                pass
        exporter.export(cap.readable_spans)
        exporter.shutdown()
        assert ["invoke_workflow w"] == [r.name for r in records_of(tmp_path / "out" / "t.jsonl")]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                '{"data": [{"traceID": "x", "spans": []}]}',
                "Jaeger's v1 JSON (/api/traces); use the OTLP API",
            ),
            ('{"resourceMetrics": []}', "OTLP metrics or logs, not traces"),
            (
                '{"error": {"httpCode": 500, "message": "boom"}}',
                'an error response, not traces: {"httpCode": 500',
            ),
            ('{"resourceSpans": []}\n{oops\n', "input:2: not JSON"),
            (
                '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
                "not a trace or span id: 'xyz'",
            ),
        ],
    )
    def test_not_traces(self, text: str, message: str) -> None:
        """Input that is not OTLP JSON traces says what it looks like instead."""
        with pytest.raises(otlp_json.OTLPJsonError) as info:
            otlp_json.read_text(text)
        assert message in str(info.value)


def _shape(records: list[SpanRecord]) -> tuple[tuple[str, str | None, int], ...]:
    """Names, parent names and token counts: what must survive any writer."""
    names = {(r.trace_id, r.span_id): r.name for r in records}
    return tuple(
        sorted(
            (
                r.name,
                names.get((r.trace_id, r.parent_id or "")),
                int(r.attributes.get("gen_ai.usage.output_tokens", -1)),
            )
            for r in records
        )
    )


class TestCLIOnFiles:
    def test_failing_check_exits_1_with_reasons(
        self, exported: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The 503 fails one check; the report names the span and its error."""
        code, out, _ = run_check(capsys, "--spec", str(SPEC), str(exported))
        assert (1, True, True, True) == (
            code,
            f"FAIL  {FAILING}  (5 spans)" in out,
            "status ERROR (error.type='503'): chat down [trace " in out,
            out.endswith("6 passed, 1 failed\n"),
        )

    def test_passing_spec_exits_0(
        self, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every check passes on the same export without the failing one."""
        code, out, _ = run_check(capsys, "--spec", str(passing_spec(tmp_path)), str(exported))
        assert (0, "6 passed, 0 failed") == (code, out.splitlines()[-1])

    def test_json_file_exporter_recording(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A file of opentelemetry-exporter-otlp-json-file (a request per span) checks the same."""
        code, out, _ = run_check(capsys, "--spec", str(SPEC), str(JSON_FILE_EXPORT), "-q")
        assert (1, f"FAIL  {FAILING}  (5 spans)", "6 passed, 1 failed") == (
            code,
            out.splitlines()[1],
            out.splitlines()[-1],
        )

    def test_junit_xml(
        self, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One testcase per check; the failed one carries the reason."""
        report = tmp_path / "reports" / "llm.xml"
        run_check(capsys, "--spec", str(SPEC), str(exported), "--junit-xml", str(report))
        suite = ET.parse(report).getroot().find("testsuite")
        assert suite is not None
        failures = {
            case.get("name"): (
                case.find("failure").get("message") if case.find("failure") is not None else None
            )  # type: ignore[union-attr]
            for case in suite.iter("testcase")
        }
        assert ("7", "1", "1 of 5 spans: status ok expected") == (
            suite.get("tests"),
            suite.get("failures"),
            failures[FAILING],
        )
        assert [None] * 6 == [v for k, v in failures.items() if k != FAILING]

    def test_real_cli_and_stdin(self, exported: Path) -> None:
        """The `otel-llm` command itself, reading the export from standard input."""
        args = [sys.executable, "-m", "otel_llm.cli", "check", "--spec", str(SPEC), "-", "-q"]
        done = subprocess.run(
            args, input=exported.read_text(), capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert (1, "6 passed, 1 failed") == (done.returncode, done.stdout.splitlines()[-1])

    def test_directory_source(self, exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A directory means every .json/.jsonl file in it."""
        code, out, _ = run_check(capsys, "--spec", str(SPEC), str(exported.parent), "-q")
        assert (1, f"from {exported.parent}") == (code, out.splitlines()[0].split(" traces ")[-1])

    def test_input_errors_exit_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing file, a bad spec or no input at all: exit 2 and a one-line reason."""
        bad_spec = tmp_path / "bad.yaml"
        bad_spec.write_text(
            "checks:\n  - name: x\n    expect: {duration: {p95: {lt: 2}}, colour: red}\n"
        )
        cases = [
            (["--spec", str(SPEC), str(tmp_path / "nope.jsonl")], "nope.jsonl: no such file"),
            (
                ["--spec", str(bad_spec), str(JAEGER_FIND)],
                "check 'x': unknown expect key(s) colour",
            ),
            (["--spec", str(tmp_path / "none.yaml"), str(JAEGER_FIND)], "cannot read spec"),
            (["--spec", str(SPEC)], "give OTLP JSON files or --jaeger URL"),
        ]
        results = []
        for args, message in cases:
            code, _, err = run_check(capsys, *args)
            results.append((code, message in err))
        assert [(2, True)] * len(cases) == results

    def test_ci_example(self, tmp_path: Path) -> None:
        """examples/ci: the smoke run against the mock exports traces its spec accepts."""
        examples = ROOT / "examples" / "ci"
        with MockOllama.from_file(examples / "scenarios.yaml") as mock:
            env = {
                **os.environ,
                "OLLAMA_HOST": mock.host,
                "OTEL_SERVICE_NAME": "my-app",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LLM_TRACES_FILE": str(tmp_path / "traces.jsonl"),
            }
            subprocess.run(
                [sys.executable, str(examples / "smoke.py")],
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
            )
        args = [
            sys.executable,
            "-m",
            "otel_llm.cli",
            "check",
            "--spec",
            str(examples / "llm-checks.yaml"),
            str(tmp_path / "traces.jsonl"),
        ]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert (0, "6 passed, 0 failed") == (done.returncode, done.stdout.splitlines()[-1])


# -- Jaeger: a loopback server answering as Jaeger v2's /api/v3 HTTP gateway ---------------


class _Jaeger(BaseHTTPRequestHandler):
    """Serves the recorded FindTraces answer for service sample-app; GetTrace filters it."""

    recorded: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _error(self, status: int, message: str) -> None:
        # http.Error in Go: text/plain, nosniff, the JSON-encoded GRPCGatewayError plus "\n"
        body = json.dumps(
            {"error": {"httpCode": status, "message": message}}, separators=(",", ":")
        )
        self._send(status, (body + "\n").encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/api/v3/traces":
            lo, hi = query.get("query.start_time_min"), query.get("query.start_time_max")
            if not lo or not hi:
                self._error(400, "query.startTimeMin and query.startTimeMax are required")
                return
            datetime.fromisoformat(lo.replace("Z", "+00:00"))  # RFC 3339, as Go parses it
            if query.get("query.service_name") != "sample-app":
                self._error(404, "No traces found")
                return
            self._send(200, JAEGER_FIND.read_bytes(), "application/json")
            return
        if url.path.startswith("/api/v3/traces/"):
            trace_id = url.path.rsplit("/", 1)[-1]
            spans = [
                rs
                for rs in self.recorded["result"]["resourceSpans"]
                if rs["scopeSpans"][0]["spans"][0]["traceId"] == trace_id
            ]
            if not spans:
                self._error(404, "No traces found")
                return
            body = json.dumps({"result": {"resourceSpans": spans}}, separators=(",", ":"))
            self._send(200, body.encode(), "application/json")
            return
        self._error(404, "404 page not found")


@pytest.fixture(scope="module")
def jaeger() -> Iterator[str]:
    _Jaeger.recorded = json.loads(JAEGER_FIND.read_text())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jaeger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _trace_id(name: str) -> str:
    return next(r.trace_id for r in records_of(JAEGER_FIND) if r.name == name)


class TestCLIOnJaeger:
    def test_search(self, jaeger: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--service searches /api/v3/traces with the time window Jaeger requires."""
        _Jaeger.requests.clear()
        code, out, _ = run_check(
            capsys,
            "--spec",
            str(SPEC),
            "--jaeger",
            jaeger,
            "--service",
            "sample-app",
            "--since",
            "15m",
            "-q",
        )
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(_Jaeger.requests[0]).query))
        window = datetime.fromisoformat(
            query["query.start_time_max"].replace("Z", "+00:00")
        ) - datetime.fromisoformat(query["query.start_time_min"].replace("Z", "+00:00"))
        assert (1, "6 passed, 1 failed", "sample-app", "20", 900.0) == (
            code,
            out.splitlines()[-1],
            query["query.service_name"],
            query["query.num_traces"],
            window.total_seconds(),
        )
        assert f"13 spans (6 LLM calls) in 4 traces from {jaeger}" in out.splitlines()[0]

    def test_trace_ids(
        self, jaeger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--trace-id fetches /api/v3/traces/{id}; only those traces are checked."""
        spec = tmp_path / "agent.yaml"
        spec.write_text(
            "checks:\n  - name: agent chats succeed\n    calls: {parent: {agent: weather}}\n"
            "    expect: {count: 2, status: ok}\n"
        )
        weather = _trace_id("invoke_workflow weather-question")
        code, out, _ = run_check(
            capsys, "--spec", str(spec), "--jaeger", jaeger, "--trace-id", weather
        )
        assert (0, f"/api/v3/traces/{weather}", "5 spans (2 LLM calls) in 1 traces") == (
            code,
            _Jaeger.requests[-1],
            out.splitlines()[0].split(": ", 1)[1].split(" from ")[0],
        )

    def test_unknown_trace_id_exits_2(
        self, jaeger: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A trace Jaeger does not have (its 404 body) is an input error."""
        code, _, err = run_check(
            capsys, "--spec", str(SPEC), "--jaeger", jaeger, "--trace-id", "0" * 31 + "1"
        )
        assert (2, True) == (code, f"trace {'0' * 31}1 not found in Jaeger" in err)

    def test_no_traces_found_fails_the_checks(
        self, jaeger: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Jaeger's "No traces found" is zero spans: checks that select nothing fail."""
        code, out, _ = run_check(
            capsys, "--spec", str(SPEC), "--jaeger", jaeger, "--service", "other", "-q"
        )
        assert (1, "selected no LLM calls (operation = 'chat')", "0 passed, 7 failed") == (
            code,
            out.splitlines()[2].strip(),
            out.splitlines()[-1],
        )

    def test_jaeger_errors(self, jaeger: str, capsys: pytest.CaptureFixture[str]) -> None:
        """No --service, or Jaeger unreachable: exit 2 with the reason."""
        _, _, no_service = run_check(capsys, "--spec", str(SPEC), "--jaeger", jaeger)
        code, _, unreachable = run_check(
            capsys,
            "--spec",
            str(SPEC),
            "--jaeger",
            "http://127.0.0.1:9",
            "--service",
            "x",
            "--timeout",
            "2",
        )
        assert (2, True, True) == (
            code,
            "a Jaeger search needs --service" in no_service,
            "cannot reach Jaeger at http://127.0.0.1:9/api/v3/traces?" in unreachable,
        )

    def test_recorded_not_found_body(self) -> None:
        """The recorded 404 body is Jaeger's GRPCGatewayError shape."""
        assert {"error": {"httpCode": 404, "message": "No traces found"}} == json.loads(
            JAEGER_NOT_FOUND.read_text()
        )


# -- the spec, evaluated in process ------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded() -> list[SpanRecord]:
    return records_of(JAEGER_FIND)


def problems(spec: Any, records: list[SpanRecord]) -> list[str]:
    (result,) = evaluate(load_spec({"checks": [{"name": "c", **spec}]}), records)
    return result.problems


class TestSpec:
    def test_percentile_is_nearest_rank(self) -> None:
        """p50 of 1..4 is 2, p95 is 4, p25 is 1."""
        assert (2, 4, 1) == (
            percentile([4, 1, 3, 2], 50),
            percentile([1, 2, 3, 4], 95),
            percentile([1, 2, 3, 4], 25),
        )

    def test_span_values_are_selector_fields(self, recorded: list[SpanRecord]) -> None:
        """total_tokens and time_to_first_chunk select like the other span values."""
        with_ttft = [r for r in recorded if r.time_to_first_chunk is not None]
        no_tokens = [r for r in recorded if r.is_llm and r.total_tokens is None]
        selected = [
            r.span_id for r in recorded if selector(time_to_first_chunk={"gte": 0})(r, Index(()))
        ]
        assert (True, [r.span_id for r in with_ttft], []) == (
            bool(with_ttft),
            selected,
            problems(
                {"calls": {"total_tokens": None}, "expect": {"count": len(no_tokens)}}, recorded
            ),
        )

    def test_aggregate_failure_names_the_value(self, recorded: list[SpanRecord]) -> None:
        """A failed aggregate gives its value, the bound and the highest spans."""
        (problem,) = problems({"expect": {"output_tokens": {"sum": {"lt": 5}}}}, recorded)
        assert problem.startswith(
            "sum output_tokens = 23, expected < 5 (over 4 spans); highest:\n6: "
        )

    def test_count_per_trace(self, recorded: list[SpanRecord]) -> None:
        """per_trace evaluates the count inside each matching trace, naming the trace."""
        spec = {
            "per_trace": {"agent": "weather"},
            "calls": {"model": "qwen3:8b"},
            "expect": {"count": 1},
        }
        (problem,) = problems(spec, recorded)
        weather = _trace_id("invoke_workflow weather-question")
        assert problem.startswith(
            f"trace {weather}: count = 2, expected = 1\nchat qwen3:8b [trace {weather}"
        )

    def test_before_and_after(self, recorded: list[SpanRecord]) -> None:
        """The tool runs after the first chat and before the second, not before both."""
        base = {"per_trace": {"agent": "weather"}, "spans": {"tool": "get_weather"}}
        after_first = problems(
            {
                **base,
                "expect": {
                    "after": {
                        "operation": "chat",
                        "attributes": {"gen_ai.request.stream": {"exists": False}},
                    }
                },
            },
            recorded,
        )
        before_both = problems({**base, "expect": {"before": {"operation": "chat"}}}, recorded)
        assert ([], True) == (after_first, "ends after 'chat qwen3:8b' starts" in before_both[0])

    def test_relations(self, recorded: list[SpanRecord]) -> None:
        """parent and ancestor expectations."""
        assert [] == problems(
            {
                "calls": {"model": "qwen3:8b"},
                "expect": {
                    "parent": {"agent": "weather"},
                    "ancestor": {"workflow": "weather-question"},
                },
            },
            recorded,
        )
        (problem,) = problems(
            {
                "calls": {"operation": "embeddings"},
                "expect": {"parent": {"operation": "invoke_agent"}},
            },
            recorded,
        )
        assert "parent is 'retrieval docs'" in problem

    def test_empty_selection(self, recorded: list[SpanRecord]) -> None:
        """Selecting nothing fails unless a count or allow_empty says it may."""
        nothing = {"calls": {"model": "gpt-9"}}
        assert (["selected no LLM calls (model = 'gpt-9')"], [], []) == (
            problems({**nothing, "expect": {"status": "ok"}}, recorded),
            problems({**nothing, "expect": {"count": 0}}, recorded),
            problems({**nothing, "allow_empty": True, "expect": {"status": "ok"}}, recorded),
        )

    def test_per_trace_without_a_trace(self, recorded: list[SpanRecord]) -> None:
        """per_trace with no matching trace fails, naming the selector."""
        assert ["no trace has a span with agent = 'nobody'"] == problems(
            {"per_trace": {"agent": "nobody"}, "expect": {"count": 1}}, recorded
        )

    def test_attributes_and_errors(self, recorded: list[SpanRecord]) -> None:
        """attributes and error_type expectations list the offending spans."""
        (problem,) = problems(
            {"calls": {"status": "error"}, "expect": {"error_type": "404"}}, recorded
        )
        ok = problems(
            {
                "calls": {"status": "error"},
                "expect": {"error_type": 503, "attributes": {"http.response.status_code": 503}},
            },
            recorded,
        )
        assert ([], True) == (ok, "error.type='503': chat down" in problem)

    def test_semconv_and_content(self, recorded: list[SpanRecord]) -> None:
        """A span without its provider and one with content are reported."""
        bad = []
        for r in recorded:
            if r.name == "chat llama3.2":
                attrs = {k: v for k, v in r.attributes.items() if k != "gen_ai.provider.name"}
                attrs["gen_ai.input.messages"] = "[]"
                r = dataclasses.replace(r, attributes=attrs)
            bad.append(r)
        semconv, content = problems({"expect": {"semconv": True, "no_content": True}}, bad)
        assert (True, True) == (
            "chat llama3.2 (span " in semconv
            and "missing required gen_ai.provider.name" in semconv,
            "records content: gen_ai.input.messages" in content,
        )

    def test_shape_strict(self, recorded: list[SpanRecord]) -> None:
        """A strict shape wants every span of the trace."""
        loose = "invoke_workflow answer-question\n  chat llama3.2\n"
        spec = {"per_trace": {"workflow": "answer-question"}, "spans": {}}
        assert [] == problems({**spec, "expect": {"shape": loose}}, recorded)
        (problem,) = problems(
            {**spec, "expect": {"shape": {"outline": loose, "strict": True}}}, recorded
        )
        assert "the trace is not exactly this shape (strict: every span must be listed)" in problem

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ({"checks": [{"expect": {"count": 1}}]}, "check #1: every check needs a name"),
            (
                {"checks": [{"name": "a", "expect": {}}]},
                "check 'a': expect must be a non-empty mapping",
            ),
            (
                {"checks": [{"name": "a", "calls": {}, "spans": {}, "expect": {"count": 1}}]},
                "give calls or spans, not both",
            ),
            (
                {"checks": [{"name": "a", "calls": {"modle": "x"}, "expect": {"count": 1}}]},
                "unknown selector field 'modle'",
            ),
            (
                {"checks": [{"name": "a", "expect": {"duration": {"p95": {"below": 2}}}}]},
                "unknown matcher operator 'below'",
            ),
            (
                {"checks": [{"name": "a", "expect": {"duration": {"under": 2}}}]},
                "expect.duration: unknown key(s) under",
            ),
            (
                {"checks": [{"name": "a", "expect": {"status": "fine"}}]},
                "expect.status must be ok, error or unset",
            ),
            (
                {"checks": [{"name": "a", "expect": {"shape": "chat x [out<many]"}}]},
                "expect.shape: line 1: out< needs a number, got 'many'",
            ),
            (
                {
                    "checks": [
                        {"name": "a", "expect": {"count": 1}},
                        {"name": "a", "expect": {"count": 1}},
                    ]
                },
                "duplicate check names: a",
            ),
            ({"check": []}, "unknown top-level key(s) check"),
            ("checks: [", "not valid YAML"),
        ],
    )
    def test_spec_errors(self, spec: Any, message: str) -> None:
        """A spec mistake names the check and the key."""
        with pytest.raises(SpecError) as info:
            load_spec(spec)
        assert message in str(info.value)
