"""The Grafana dashboards: generated JSON current and schema-valid, and every query real.

Static checks: ``dashboards/build.py`` output equals the committed JSON; the JSON
validates against grafana-foundation-sdk's dashboard JSON schema
(``dashboards/schema/dashboard.jsonschema.json``, vendored from the SDK repository's
``jsonschema/`` directory: the PyPI package ships none); datasource uids match the
provisioning file; every panel has a title and a unit; every variable used is defined;
every metric name is an otel_llm instrument's Prometheus name.

Live check: an instrumented subprocess calls the mock Ollama in a loop (streams,
non-streaming calls, cold loads, HTTP 500s, embeddings) and serves otel_llm's direct
``/metrics`` endpoint (the names a collector produces); Debian's Prometheus, configured by
``deploy/prometheus.test.yml``, scrapes it; every PromQL expression of every panel,
variable and datasource link is run with the variables filled in and must return data;
exemplar queries must return trace ids of real spans. Every process is stopped by pid.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from otel_llm import instruments, prometheus
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import require
from tests.test_prometheus_real import (
    PromQL,
    free_port,
    launch_app,
    launch_prometheus,
    stop,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
SCHEMA = DASHBOARDS / "schema" / "dashboard.jsonschema.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASHBOARDS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = load_build()
COMMITTED: dict[str, dict[str, Any]] = {
    name: json.loads((DASHBOARDS / name).read_text(encoding="utf-8")) for name in build.DASHBOARDS
}
DATASOURCES = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yaml").read_text())
RECORDED = [
    rule["record"]
    for path in sorted((ROOT / "deploy" / "rules").glob("*.yml"))
    for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    for rule in group["rules"]
    if "record" in rule
]
BUILTIN_VARIABLES = {
    "__all",
    "__data",
    "__interval",
    "__range",
    "__rate_interval",
    "__url_time_range",
    "__value",
}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included; rows themselves excluded."""
    for panel in dashboard.get("panels", []):
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in re.findall(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)", text)}


def label_values(query: str) -> tuple[str, str]:
    """``(selector, label)`` of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert match, query
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard, with where it came from."""

    where: str
    expr: str
    exemplar: bool = False


def promql_queries() -> list[Query]:
    out = []
    for name, dashboard in COMMITTED.items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if "expr" in target:
                    where = f"{name}: {panel['title']} [{target['refId']}]"
                    out.append(Query(where, target["expr"], bool(target.get("exemplar"))))
    for source in DATASOURCES["datasources"]:
        for query in source.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            # Provisioning files escape `$` as `$$`; Grafana fills $__tags from the span.
            out.append(Query(f"datasource {source['name']}: {query['name']}", query["query"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """``(dashboard, variable, query)`` for every Prometheus query variable."""
    return [
        (name, var_name, var["query"])
        for name, dashboard in COMMITTED.items()
        for var_name, var in variables(dashboard).items()
        if var["type"] == "query"
    ]


class TestGenerated:
    def test_committed_json_is_what_build_py_writes(self) -> None:
        """Regenerating changes nothing: the committed JSON is current."""
        for name, make in build.DASHBOARDS.items():
            assert (DASHBOARDS / name).read_text(encoding="utf-8") == build.render(make()), name

    def test_check_mode_agrees(self) -> None:
        """`python dashboards/build.py --check` exits 0."""
        assert 0 == build.main(["--check"])

    def test_valid_against_the_foundation_sdk_schema(self) -> None:
        """Each dashboard validates against the SDK's dashboard JSON schema (draft-07)."""
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        validator = jsonschema.Draft7Validator(schema)
        errors = {
            name: [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(d)]
            for name, d in COMMITTED.items()
        }
        assert {name: [] for name in COMMITTED} == errors

    def test_the_schema_is_strict(self) -> None:
        """The schema rejects an unknown panel key: the check above has teeth."""
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        broken = json.loads(json.dumps(COMMITTED["llm-overview.json"]))
        next(panels(broken))["titel"] = "typo"
        assert not jsonschema.Draft7Validator(schema).is_valid(broken)

    def test_sdk_version_is_pinned(self) -> None:
        """pyproject pins grafana-foundation-sdk to the version installed here."""
        from importlib.metadata import version

        text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        pinned = re.search(r'"grafana-foundation-sdk==([^"]+)"', text)
        assert pinned is not None
        assert pinned.group(1) == version("grafana-foundation-sdk").lstrip("v")


class TestContent:
    def test_datasource_uids_match_provisioning(self) -> None:
        """Every panel, target and variable names a provisioned datasource uid and type."""
        provisioned = {d["uid"]: d["type"] for d in DATASOURCES["datasources"]}
        assert {build.PROMETHEUS_UID: "prometheus", build.JAEGER_UID: "jaeger"} == provisioned
        refs = []
        for dashboard in COMMITTED.values():
            for panel in panels(dashboard):
                refs.append(panel["datasource"])
                refs.extend(t["datasource"] for t in panel.get("targets", []))
            refs.extend(v["datasource"] for v in variables(dashboard).values() if "datasource" in v)
        assert refs
        assert [] == [r for r in refs if provisioned.get(r["uid"]) != r["type"]]

    def test_every_panel_has_a_title_and_a_unit(self) -> None:
        """No untitled panel, no panel without a unit."""
        missing = [
            f"{name}: {panel.get('title')!r}"
            for name, dashboard in COMMITTED.items()
            for panel in panels(dashboard)
            if not panel.get("title") or not panel["fieldConfig"]["defaults"].get("unit")
        ]
        assert [] == missing

    def test_every_variable_used_is_defined(self) -> None:
        """$service, $model, ${trace_id}...: each is a variable of its dashboard."""
        for name, dashboard in COMMITTED.items():
            text = json.dumps([p for p in panels(dashboard)]) + json.dumps(dashboard["templating"])
            undefined = used_variables(text) - set(variables(dashboard)) - BUILTIN_VARIABLES
            assert set() == undefined, name

    def test_overview_has_service_model_and_environment_variables(self) -> None:
        """The overview filters on service, environment and model."""
        assert {"service", "environment", "model"} <= set(variables(COMMITTED["llm-overview.json"]))

    def test_metric_names_are_otel_llm_instruments(self) -> None:
        """build.METRICS maps instrument names to their Prometheus names; queries use only those."""
        specs = {spec.name: spec for spec in instruments.ALL}
        expected = {
            name: prometheus.metric_name(name, specs[name].unit, specs[name].kind)
            for name in build.METRICS
        }
        assert expected == build.METRICS
        known = {
            name + suffix
            for name in build.METRICS.values()
            for suffix in ("", "_bucket", "_sum", "_count")
        } | set(RECORDED)  # series the shipped recording rules record
        used = {
            metric
            for query in promql_queries() + [Query(v, q) for _, v, q in variable_queries()]
            for metric in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", query.expr)
        }
        assert used and set() == used - known

    def test_jaeger_queries_are_well_formed(self) -> None:
        """Searches name a service, the trace panel a trace id, the graph its dependencies."""
        kinds = set()
        for dashboard in COMMITTED.values():
            for panel in panels(dashboard):
                for target in panel.get("targets", []):
                    if target["datasource"]["uid"] != build.JAEGER_UID:
                        continue
                    kind = target.get("queryType")
                    kinds.add((panel["type"], kind))
                    if kind == "search":
                        assert target["service"] == "${service}"
                        assert 0 < target["limit"] <= 100
                    elif kind is None:
                        assert "${trace_id}" == target["query"]
                    else:
                        assert "dependencyGraph" == kind
        assert {("table", "search"), ("traces", None), ("nodeGraph", "dependencyGraph")} == kinds

    def test_jaeger_panels_have_one_target(self) -> None:
        """Grafana's Jaeger datasource runs only a panel's first target: one per panel."""
        counts = {
            f"{name}: {panel['title']}": len(panel.get("targets", []))
            for name, dashboard in COMMITTED.items()
            for panel in panels(dashboard)
            if panel["datasource"]["uid"] == build.JAEGER_UID
        }
        assert counts and {where: 1 for where in counts} == counts

    def test_jaeger_searches_use_variables_of_the_attributes_jaeger_names(self) -> None:
        """A variable in a Jaeger search holds values of the attribute Jaeger searches on.

        Jaeger's service is service.name, and a tag ``key=${var}`` is the span attribute
        ``key``: each such variable must list the Prometheus label of that very attribute
        (``service_name``, not ``job``, which prefixes a service namespace).
        """
        checked = []
        for name, dashboard in COMMITTED.items():
            labels = {
                var: label_values(v["query"])[1]
                for var, v in variables(dashboard).items()
                if v["type"] == "query"
            }
            for panel in panels(dashboard):
                for target in panel.get("targets", []):
                    if target.get("queryType") != "search":
                        continue
                    uses = [("service.name", target["service"])]
                    for pair in target.get("tags", "").split():
                        key, _, value = pair.partition("=")
                        uses.append((key, value))
                    for attribute, value in uses:
                        for var in used_variables(value) & set(labels):
                            checked.append(var)
                            assert prometheus.label_name(attribute) == labels[var], (
                                f"{name}: {panel['title']}: ${var} lists {labels[var]},"
                                f" Jaeger searches {attribute}"
                            )
        assert {"service", "model"} <= set(checked)

    def test_traces_to_metrics_tags_map_to_the_same_labels(self) -> None:
        """The Jaeger datasource's span → metrics link maps each attribute to its label."""
        [jaeger] = [d for d in DATASOURCES["datasources"] if d["type"] == "jaeger"]
        tags = jaeger["jsonData"]["tracesToMetrics"]["tags"]
        assert tags and [] == [t for t in tags if t["value"] != prometheus.label_name(t["key"])]

    def test_exemplars_on_latency_panels(self) -> None:
        """Duration and time-to-first-token panels ask for exemplars."""
        with_exemplars = {q.where.split(": ", 1)[1] for q in promql_queries() if q.exemplar}
        assert {
            "Call duration p50 / p95 / p99 [A]",
            "Time to first token p50 / p95 [A]",
            "Time outside Ollama p95 by model [A]",
        } == with_exemplars


# -- live: a real Prometheus that scraped real instrumented calls ------------------------------
SERVICE = "llm-dashboards-test"
NAMESPACE = "llm-team"
ENVIRONMENT = "test"

# The instrumented app: calls the mock Ollama in a loop until told to stop (or 5 minutes
# pass); spans' ids go to a file so exemplars can be matched to real calls.
APP = r"""
import json, sys, time
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_llm

work, base = Path(sys.argv[1]), sys.argv[2]


class IdFile(SpanExporter):
    def export(self, spans):
        with open(work / "spans.txt", "a") as out:
            for span in spans:
                out.write(format(span.get_span_context().trace_id, "032x") + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(IdFile()))
# OTEL_METRICS_EXPORTER=prometheus: /metrics; the team tag labels usage and duration.
otel_llm.instrument(tracer_provider=provider, metric_tags=["team"])
(work / "ready").touch()
messages = [{"role": "user", "content": "Why is the sky blue?"}]
deadline = time.monotonic() + 300
with httpx.Client(base_url=base, timeout=30) as client:
    while not (work / "stop").exists() and time.monotonic() < deadline:
        stream = {"model": "llama3.2", "messages": messages}
        with client.stream("POST", "/api/chat", json=stream) as r:
            for _ in r.iter_lines():
                pass
        client.post("/api/chat", json={"model": "qwen3:8b", "messages": messages, "stream": False})
        client.post("/api/chat", json={"model": "broken", "messages": messages, "stream": False})
        client.post("/api/embed", json={"model": "all-minilm", "input": ["why is the sky blue"]})
        with otel_llm.tags(team="search"):  # a prompt cut to fit a 16-token window
            client.post("/api/chat", json={**stream, "stream": False, "options": {"num_ctx": 16},
                        "messages": [{"role": "user", "content": "why " * 40}]})
        with client.stream("POST", "/api/pull", json={"model": "llama3.2"}) as r:
            for _ in r.iter_lines():
                pass
        time.sleep(0.1)
"""

RATE_WINDOW = "30s"
RANGE = "5m"


@dataclass
class Live:
    api: PromQL
    work: Path
    started: float
    values: dict[str, str] = field(default_factory=dict)

    def fill(self, text: str, values: dict[str, str] | None = None) -> str:
        """The query with dashboard variables (and datasource escapes) filled in."""
        table = {**self.values, **(values or {})}
        text = text.replace("$$", "$")
        return re.sub(
            r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: table[m.group(1) or m.group(2)], text
        )

    def trace_ids(self) -> set[str]:
        return set((self.work / "spans.txt").read_text().split())

    def label_values(self, selector: str, label: str) -> list[str]:
        response = httpx.get(
            f"{self.api.base}/api/v1/label/{label}/values",
            params={"match[]": selector, "start": str(self.started - 60)},
            timeout=5,
        )
        response.raise_for_status()
        values: list[str] = response.json()["data"]
        return values


def prometheus_binary() -> str:
    return require("prometheus")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Prometheus (deploy/prometheus.test.yml) scraping an app that keeps calling the mock."""
    binary = prometheus_binary()
    work = tmp_path_factory.mktemp("dashboards")
    metrics_port, prometheus_port = free_port(), free_port()
    shutil.copy(ROOT / "deploy" / "prometheus.test.yml", work / "prometheus.yml")
    shutil.copytree(ROOT / "deploy" / "rules", work / "rules")  # its rule_files: rules/*.yml
    (work / "targets").mkdir()
    (work / "targets" / "app.json").write_text(
        json.dumps([{"targets": [f"127.0.0.1:{metrics_port}"]}])
    )
    (work / "app.py").write_text(APP)
    scenarios = {
        "llama3.2": Scenario(ttft=0.02, chunk_delay=0.002),
        "qwen3:8b": Scenario(ttft=0.01, load_duration_ns=3_000_000_000),  # a cold load each call
        "broken": Scenario(status=500, error_message="model runner crashed"),
    }
    processes: list[subprocess.Popen[bytes]] = []
    started = time.time()
    with MockOllama(scenarios) as mock:
        try:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OLLAMA"))},
                "OTEL_SERVICE_NAME": SERVICE,
                # With a namespace, `job` is "llm-team/<name>" while Jaeger knows the service
                # as <name>: the $service variable must still hold the name alone.
                "OTEL_RESOURCE_ATTRIBUTES": (
                    f"deployment.environment.name={ENVIRONMENT},service.namespace={NAMESPACE}"
                ),
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "prometheus",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
            }
            app = launch_app(work, mock.url, env, processes)
            launch_prometheus(binary, work, prometheus_port, processes)
            api = PromQL(prometheus_port)
            wait_for("a scrape", lambda: api.scalar('up{job="otel-llm-direct"}') == 1.0)
            # rate() needs two scrapes inside its window that both saw traffic.
            query = f"sum(rate({build.OPERATION_DURATION}_count[{RATE_WINDOW}]))"
            wait_for("rates", lambda: (api.scalar(query) or 0) > 0)
            time.sleep(2)
            assert app.poll() is None, (work / "app.log").read_text()
            yield Live(
                api,
                work,
                started,
                {
                    "service": SERVICE,
                    "environment": ".*",
                    "model": ".*",
                    "__rate_interval": RATE_WINDOW,
                    "__range": RANGE,
                    "__interval": "1s",
                    "__tags": f'service_name="{SERVICE}", gen_ai_request_model="llama3.2"',
                    "tag": "otel_llm_tag_team",
                    "model_operation": "pull",
                },
            )
        finally:
            (work / "stop").touch()
            for process in reversed(processes):
                stop(process)


def finite(vector: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in vector.items() if not math.isnan(v) and not math.isinf(v)}


ALL_PROMQL = promql_queries()


@pytest.mark.real_component
class TestAgainstPrometheus:
    @pytest.mark.parametrize("query", ALL_PROMQL, ids=[q.where for q in ALL_PROMQL])
    def test_returns_data(self, live: Live, query: Query) -> None:
        """The expression, variables filled in, returns at least one finite sample."""
        # Call chains' model is single-valued: a concrete model instead of `.*`.
        single = {"model": "llama3.2"} if query.where.startswith("call-chains") else {}
        expr = live.fill(query.expr, single)
        result: dict[str, float] = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not result:
            result = finite(live.api.vector(expr))
            if not result:
                time.sleep(0.5)
        assert result, f"{query.where}: no data for {expr}"

    @pytest.mark.parametrize(
        "query",
        [q for q in ALL_PROMQL if q.exemplar],
        ids=[q.where for q in ALL_PROMQL if q.exemplar],
    )
    def test_exemplars_carry_trace_ids_of_real_calls(self, live: Live, query: Query) -> None:
        """Exemplar queries return trace ids, each the trace of a call the app made."""
        exemplars = wait_for(
            "exemplars", lambda: live.api.exemplars(live.fill(query.expr), live.started)
        )
        ids = {e["labels"]["trace_id"] for e in exemplars}
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
        assert ids <= live.trace_ids()

    @pytest.mark.parametrize(
        ("dashboard", "name", "query"),
        variable_queries(),
        ids=[f"{d}: ${n}" for d, n, _ in variable_queries()],
    )
    def test_variable_values(self, live: Live, dashboard: str, name: str, query: str) -> None:
        """label_values(selector, label) lists the values the app produced."""
        selector, label = label_values(query)
        values = live.label_values(live.fill(selector), label)
        expected = {
            "service": [SERVICE],
            "environment": [ENVIRONMENT],
            "model": ["all-minilm", "broken", "llama3.2", "qwen3:8b"],
        }[name]
        assert expected == sorted(values)

    @pytest.mark.parametrize("record", RECORDED)
    def test_recording_rules_record_real_series(self, live: Live, record: str) -> None:
        """Each recording rule of deploy/rules/, loaded by this Prometheus, has data."""
        result: dict[str, float] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not result:
            result = finite(live.api.vector(record))
            if not result:
                time.sleep(0.5)
        assert result, f"{record}: no data"
        for labels in map(json.loads, result):
            assert labels["service_name"] == SERVICE, labels

    def test_recorded_error_ratio_sees_the_failures(self, live: Live) -> None:
        """The recorded error ratio: 1 for the failing model, 0 for the others."""
        ratios = live.api.vector("service_model:gen_ai_client_operation_errors:ratio_rate5m")
        by_model = {json.loads(k)["gen_ai_request_model"]: v for k, v in ratios.items()}
        assert {"all-minilm": 0.0, "broken": 1.0, "llama3.2": 0.0, "qwen3:8b": 0.0} == by_model

    def test_error_ratio_sees_the_failures(self, live: Live) -> None:
        """The failing model's error ratio is 1 and the healthy ones' 0."""
        [panel] = [
            p
            for p in panels(COMMITTED["llm-overview.json"])
            if p["title"] == "Error ratio by model"
        ]
        ratios = live.api.vector(live.fill(panel["targets"][0]["expr"]))
        by_model = {json.loads(k)["gen_ai_request_model"]: v for k, v in ratios.items()}
        assert {"all-minilm": 0.0, "broken": 1.0, "llama3.2": 0.0, "qwen3:8b": 0.0} == by_model
