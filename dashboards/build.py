"""Grafana dashboards as code: writes ``llm-overview.json`` and ``call-chains.json`` here.

    python dashboards/build.py          # regenerate (commit the JSON it writes)
    python dashboards/build.py --check  # exit 1 if the committed JSON is stale

Built with grafana-foundation-sdk (the ``dashboards`` extra pins it). Grafana loads the
JSON from ``deploy/grafana/provisioning/dashboards/dashboards.yaml`` into the "LLM"
folder. Every metric and label name the dashboards read is defined once, below, as the
Prometheus exposes it: the OpenTelemetry Collector's ``prometheus`` exporter and
otel_llm's direct ``/metrics`` endpoint give the same names (``docs/metrics.md``), so the
dashboards serve both paths. ``tests/test_dashboards.py`` runs every PromQL expression
here against a real Prometheus that scraped real instrumented calls.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

# Classic (v1) dashboard JSON on purpose: Grafana's file provisioning loads it on every
# version, while v2 ("Prefer using dashboardv2") needs Grafana 12+ feature toggles. The
# filter must precede the SDK's imports, which warn too (hence E402 below).
warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import nodegraph, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

HERE = Path(__file__).resolve().parent

# -- datasources: the uids fixed in deploy/grafana/provisioning/datasources/datasources.yaml
PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
JAEGER = common.DataSourceRef(type_val="jaeger", uid=JAEGER_UID)

# -- metrics: the Prometheus name of each otel_llm instrument (otel_llm/instruments.py;
#    translation as in docs/metrics.md). Histograms add _bucket / _sum / _count.
OPERATION_DURATION = "gen_ai_client_operation_duration_seconds"  # gen_ai.client.operation.duration
TOKEN_USAGE = "gen_ai_client_token_usage"  # gen_ai.client.token.usage ({token}: no unit suffix)
TIME_TO_FIRST_CHUNK = "gen_ai_client_operation_time_to_first_chunk_seconds"
SERVER_REQUEST_DURATION = "gen_ai_server_request_duration_seconds"  # Ollama's total_duration
SERVER_TIME_TO_FIRST_TOKEN = "gen_ai_server_time_to_first_token_seconds"  # load + prefill
SERVER_TIME_PER_OUTPUT_TOKEN = "gen_ai_server_time_per_output_token_seconds"  # eval / eval_count
MODEL_LOAD_DURATION = "ollama_model_load_duration_seconds"  # recorded for cold loads only
CONTEXT_TRUNCATIONS = "ollama_context_truncations_total"  # prompts that filled the window
CONTEXT_UTILIZATION = "ollama_context_utilization"  # prompt tokens / window (unit 1)
WAIT_DURATION = "ollama_request_wait_duration_seconds"  # client duration - total_duration
MODEL_OPERATION_DURATION = "ollama_model_operation_duration_seconds"  # pull, push, show...
MODEL_PULLED = "ollama_model_pulled_bytes_total"  # bytes pulls downloaded

METRICS: dict[str, str] = {
    "gen_ai.client.operation.duration": OPERATION_DURATION,
    "gen_ai.client.token.usage": TOKEN_USAGE,
    "gen_ai.client.operation.time_to_first_chunk": TIME_TO_FIRST_CHUNK,
    "gen_ai.server.request.duration": SERVER_REQUEST_DURATION,
    "gen_ai.server.time_to_first_token": SERVER_TIME_TO_FIRST_TOKEN,
    "gen_ai.server.time_per_output_token": SERVER_TIME_PER_OUTPUT_TOKEN,
    "ollama.model.load.duration": MODEL_LOAD_DURATION,
    "ollama.context.truncations": CONTEXT_TRUNCATIONS,
    "ollama.context.utilization": CONTEXT_UTILIZATION,
    "ollama.request.wait.duration": WAIT_DURATION,
    "ollama.model.operation.duration": MODEL_OPERATION_DURATION,
    "ollama.model.pulled": MODEL_PULLED,
}
"""OTel instrument name → Prometheus name, for every metric a dashboard reads."""

# -- recorded series (deploy/rules/otel-llm.rules.yml): 5-minute rates already summed per
#    service, environment and model, so a per-model panel reads one series per model
#    instead of every raw series. The Prometheus the dashboards read must load the rules
#    (both shipped configs do).
RECORDED_CALLS = "service_model:gen_ai_client_operations:rate5m"
RECORDED_ERRORS = "service_model:gen_ai_client_operation_errors:rate5m"
RECORDED_OUTPUT_TOKENS = "service_model:gen_ai_client_output_tokens:rate5m"
RECORDED_TRUNCATION_RATIO = "service_model:ollama_context_truncations:ratio_rate5m"

# -- labels (attribute keys with "." → "_")
SERVICE = "service_name"
"""service.name, copied onto every series by the Collector (resource_constant_labels) and by
the direct endpoint. Not `job`: that is `service.namespace/service.name` when a namespace is
set, while Jaeger names a service by service.name alone, and the Jaeger searches below take
the same $service variable."""
ENVIRONMENT = "deployment_environment_name"  # a resource label on both paths (docs/metrics.md)
MODEL = "gen_ai_request_model"
OPERATION = "gen_ai_operation_name"
TOKEN_TYPE = "gen_ai_token_type"
ERROR_TYPE = "error_type"
SERVER_ADDRESS = "server_address"
PROVIDER = "gen_ai_provider_name"
OLLAMA_CALLS = f'{PROVIDER}="ollama"'
"""Calls to Ollama: the only ones with a total_duration to compare with."""
FAILED = f'{ERROR_TYPE}!=""'
MODEL_OPERATION = "ollama_operation_name"  # pull, push, create, copy, delete, show
TAG = "$tag"
"""The label of the allow-listed traffic tag to group usage by (``metric_tags``; e.g.
``tags(team=...)`` is otel_llm_tag_team): a custom variable, one label name per value."""
TAG_LABELS = "otel_llm_tag_team,otel_llm_tag_app,gen_ai_agent_name,user_id,session_id"
"""Only failed calls carry error.type."""

# -- units (Grafana unit ids; tokens have none, so a suffix)
SECONDS = "s"
PER_SECOND = "reqps"
RATIO = "percentunit"
TOKENS = "suffix: tok"
TOKENS_PER_SECOND = "suffix: tok/s"
BYTES_PER_SECOND = "Bps"
COUNT = "short"
MICROSECONDS = "µs"  # what Jaeger search results report
MILLISECONDS = "ms"

RATE = "$__rate_interval"
SELECTOR = f'{SERVICE}=~"$service", {ENVIRONMENT}=~"$environment", {MODEL}=~"$model"'
"""Every overview query filters on the three dashboard variables."""
SERVER_SELECTOR = f'{SERVICE}=~"$service", {ENVIRONMENT}=~"$environment"'
"""Model operations carry no gen_ai_request_model: they filter on service and environment."""


# -- Jaeger queries: the SDK has no Jaeger dataquery, so one small variant ---------------
class JaegerQuery(cogvariants.Dataquery):
    """A Grafana Jaeger datasource query: a trace by id, a search, or the dependency graph."""

    def __init__(self, ref_id: str, query_type: str | None = None, **fields: Any) -> None:
        self.ref_id = ref_id
        self.query_type = query_type
        self.fields = fields

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "datasource": JAEGER.to_json()}
        if self.query_type is not None:
            payload["queryType"] = self.query_type
        payload.update(self.fields)
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JaegerQuery:
        fields = {k: v for k, v in data.items() if k not in ("refId", "queryType", "datasource")}
        return cls(data.get("refId", "A"), data.get("queryType"), **fields)


class Jaeger(cogbuilder.Builder[JaegerQuery]):
    def __init__(self, ref_id: str, query_type: str | None = None, **fields: Any) -> None:
        self._internal = JaegerQuery(ref_id, query_type, **fields)

    def build(self) -> JaegerQuery:
        return self._internal


def trace_search(ref_id: str, **fields: Any) -> Jaeger:
    """Jaeger search (service, operation, tags in logfmt, minDuration, limit)."""
    return Jaeger(ref_id, "search", **fields)


# -- building blocks ------------------------------------------------------------------------
def promql(
    expr: str, legend: str, ref_id: str = "A", exemplar: bool = False
) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)
    query = query.datasource(PROMETHEUS).range()
    return query.exemplar(True) if exemplar else query


def legend(*labels: str) -> str:
    """``{{label}} {{label}}``: Grafana's legend template."""
    return " ".join("{{" + label + "}}" for label in labels)


def rate(metric: str, extra: str = "") -> str:
    """``rate(metric{variables, extra}[$__rate_interval])``."""
    matchers = SELECTOR + (", " + extra if extra else "")
    return f"rate({metric}{{{matchers}}}[{RATE}])"


def quantile(q: float, histogram: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) ({rate(histogram + '_bucket')}))"


def series(
    title: str,
    unit: str,
    description: str,
    *targets: prometheus.Dataquery,
    width: int = 12,
    stack: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .height(8)
        .span(width)
        .line_width(1)
        .fill_opacity(10 if not stack else 40)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stack:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single(
    title: str, unit: str, description: str, target: prometheus.Dataquery, width: int = 6
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(PROMETHEUS)
        .height(4)
        .span(width)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .graph_mode(common.BigValueGraphMode.AREA)
        .with_target(target.instant())
    )


def variable(name: str, label: str, query: str, all_value: str | None = ".*") -> db.QueryVariable:
    var = (
        db.QueryVariable(name)
        .label(label)
        .query(query)
        .definition(query)
        .datasource(PROMETHEUS)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if all_value is None:
        return var.multi(False).include_all(False)
    return (
        var.multi(True)
        .include_all(True)
        .all_value(all_value)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def base(title: str, uid: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["llm", "otel_llm", "genai"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .timepicker(db.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m"]))
    )


def link(title: str, uid: str) -> db.DashboardLink:
    return (
        db.DashboardLink(title)
        .type(model.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .keep_time(True)
        .include_vars(True)
    )


OVERVIEW_UID = "llm-overview"
CHAINS_UID = "llm-call-chains"

OPEN_TRACE = (
    f"/d/{CHAINS_UID}/llm-call-chains?${{__url_time_range}}&${{service:queryparam}}"
    "&var-trace_id=${__data.fields.traceID}"
)
"""Data link on a trace id: the Call chains dashboard with that trace in its trace panel."""


def traces_table(
    title: str, description: str, target: Jaeger, width: int, height: int
) -> table.Panel:
    """A table of one Jaeger search; a click on a row opens its trace in Call chains.

    One target only: Grafana's Jaeger datasource runs the first target of a panel and
    ignores the rest. (The trace id also links to Explore: the datasource adds that link.)
    """
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .unit(MICROSECONDS)
        .datasource(JAEGER)
        .height(height)
        .span(width)
        .data_links(
            [
                db.DashboardLink("Open in Call chains")
                .type(model.DashboardLinkType.LINK)
                .url(OPEN_TRACE)
            ]
        )
    )
    return panel.with_target(target)


# -- LLM overview ---------------------------------------------------------------------------
def recorded(name: str) -> str:
    """``sum by (model) (name{variables})``: a recorded per-model series, environments summed."""
    return f"sum by ({MODEL}) ({name}{{{SELECTOR}}})"


def overview() -> db.Dashboard:
    calls = recorded(RECORDED_CALLS)
    failed = rate(OPERATION_DURATION + "_count", FAILED)
    errors = recorded(RECORDED_ERRORS)
    cold_loads = f"{MODEL_LOAD_DURATION}_count{{{SELECTOR}}}"
    return (
        base(
            "LLM overview",
            OVERVIEW_UID,
            "GenAI metrics from otel_llm: traffic, errors, latency, tokens and Ollama's own"
            " timings, with exemplars linking to the trace of a slow call.",
        )
        .link(link("Call chains", CHAINS_UID))
        .with_variable(
            variable(
                "service", "Service", f"label_values({OPERATION_DURATION}_count, {SERVICE})", None
            )
        )
        .with_variable(
            variable(
                "environment",
                "Environment",
                f'label_values({OPERATION_DURATION}_count{{{SERVICE}=~"$service"}}, {ENVIRONMENT})',
            )
        )
        .with_variable(
            variable(
                "model",
                "Model",
                f'label_values({OPERATION_DURATION}_count{{{SERVICE}=~"$service",'
                f' {ENVIRONMENT}=~"$environment"}}, {MODEL})',
            )
        )
        .with_variable(
            db.CustomVariable("tag")
            .label("Usage by tag")
            .description(
                "Prometheus label of a tag named in metric_tags (tags(team=...) is"
                " otel_llm_tag_team); used by the Usage row."
            )
            .values(TAG_LABELS)
            .current(
                model.VariableOption(
                    selected=True, text="otel_llm_tag_team", value="otel_llm_tag_team"
                )
            )
        )
        .with_variable(
            db.CustomVariable("slow")
            .label("Slow call ≥")
            .values("1s,2s,5s,10s,30s,60s")
            .current(model.VariableOption(selected=True, text="5s", value="5s"))
        )
        .with_row(db.Row("Traffic"))
        .with_panel(
            single(
                "Calls/s",
                PER_SECOND,
                "LLM calls per second (all selected models).",
                promql(f"sum({rate(OPERATION_DURATION + '_count')})", "calls/s"),
            )
        )
        .with_panel(
            single(
                "Error ratio",
                RATIO,
                "Share of calls that ended with error.type set.",
                promql(
                    f"(sum({failed}) or vector(0)) / sum({rate(OPERATION_DURATION + '_count')})",
                    "errors",
                ),
            )
        )
        .with_panel(
            single(
                "Cold loads",
                COUNT,
                "Calls for which Ollama (re)loaded the model (load_duration ≥ 0.25 s) in the"
                " selected time range.",
                promql(
                    f"sum(increase({cold_loads}[$__range]))",
                    "cold loads",
                ),
            )
        )
        .with_panel(
            single(
                "p95 time to first token",
                SECONDS,
                "95th percentile of request start → first chunk, streams only.",
                promql(quantile(0.95, TIME_TO_FIRST_CHUNK), "p95"),
            )
        )
        .with_panel(
            series(
                "Calls/s by model",
                PER_SECOND,
                "LLM calls per second, one line per requested model (5-minute rate,"
                " recorded by deploy/rules).",
                promql(calls, legend(MODEL)),
            )
        )
        .with_panel(
            series(
                "Error ratio by model",
                RATIO,
                "Failed calls / all calls per model; 0 when a model had no error (5-minute"
                " rates, recorded by deploy/rules).",
                promql(
                    f"({errors} or {calls} * 0) / {calls}",
                    legend(MODEL),
                ),
            )
        )
        .with_panel(
            series(
                "Errors/s by error.type",
                PER_SECOND,
                "HTTP status, exception class, stream_error, stream_incomplete...",
                promql(
                    f"sum by ({ERROR_TYPE}, {MODEL}) ({failed})",
                    legend(ERROR_TYPE, MODEL),
                ),
                width=24,
            )
        )
        .with_row(db.Row("Latency"))
        .with_panel(
            series(
                "Call duration p50 / p95 / p99",
                SECONDS,
                "Request start → last byte. Exemplar dots open the trace of that call.",
                promql(quantile(0.5, OPERATION_DURATION), "p50", "A", exemplar=True),
                promql(quantile(0.95, OPERATION_DURATION), "p95", "B"),
                promql(quantile(0.99, OPERATION_DURATION), "p99", "C"),
            )
        )
        .with_panel(
            series(
                "Time to first token p50 / p95",
                SECONDS,
                "Request start → first content chunk (streams), with exemplars.",
                promql(quantile(0.5, TIME_TO_FIRST_CHUNK), "p50", "A", exemplar=True),
                promql(quantile(0.95, TIME_TO_FIRST_CHUNK), "p95", "B"),
            )
        )
        .with_panel(
            series(
                "Call duration p95 by model",
                SECONDS,
                "95th percentile per requested model.",
                promql(quantile(0.95, OPERATION_DURATION, MODEL), legend(MODEL)),
            )
        )
        .with_panel(
            series(
                "Client vs Ollama-reported duration (p95)",
                SECONDS,
                "What the app waited (client) next to Ollama's total_duration (server); the"
                " gap is network, queueing and streaming to the client.",
                promql(quantile(0.95, OPERATION_DURATION), "client", "A"),
                promql(quantile(0.95, SERVER_REQUEST_DURATION), "ollama", "B"),
            )
        )
        .with_row(db.Row("Tokens"))
        .with_panel(
            series(
                "Output tokens/s by model",
                TOKENS_PER_SECOND,
                "Output tokens generated per second, as the server counted them (5-minute"
                " rate, recorded by deploy/rules).",
                promql(recorded(RECORDED_OUTPUT_TOKENS), legend(MODEL)),
                width=8,
            )
        )
        .with_panel(
            series(
                "Input vs output tokens/s",
                TOKENS_PER_SECOND,
                "Prompt (input) and generated (output) tokens per second, stacked.",
                promql(
                    f"sum by ({TOKEN_TYPE}) ({rate(TOKEN_USAGE + '_sum')})",
                    legend(TOKEN_TYPE),
                ),
                width=8,
                stack=True,
            )
        )
        .with_panel(
            series(
                "Tokens per call",
                TOKENS,
                "Mean input and output tokens per call.",
                promql(
                    f"sum by ({TOKEN_TYPE}) ({rate(TOKEN_USAGE + '_sum')})"
                    f" / sum by ({TOKEN_TYPE}) ({rate(TOKEN_USAGE + '_count')})",
                    legend(TOKEN_TYPE),
                ),
                width=8,
            )
        )
        .with_row(db.Row("Ollama"))
        .with_panel(
            series(
                "Decode speed by model",
                TOKENS_PER_SECOND,
                "Output tokens per second of decode time, from Ollama's eval_count /"
                " eval_duration (not the network).",
                promql(
                    f"sum by ({MODEL}) ({rate(SERVER_TIME_PER_OUTPUT_TOKEN + '_count')})"
                    f" / sum by ({MODEL}) ({rate(SERVER_TIME_PER_OUTPUT_TOKEN + '_sum')})",
                    legend(MODEL),
                ),
                width=8,
            )
        )
        .with_panel(
            series(
                "Ollama time to first token p95",
                SECONDS,
                "Model load + prompt evaluation, as Ollama reports them.",
                promql(quantile(0.95, SERVER_TIME_TO_FIRST_TOKEN, MODEL), legend(MODEL)),
                width=8,
            )
        )
        .with_panel(
            series(
                "Cold loads by model",
                COUNT,
                "Calls for which Ollama (re)loaded the model, per rate interval.",
                promql(
                    f"sum by ({MODEL}) (increase({cold_loads}[{RATE}]))",
                    legend(MODEL),
                ),
                width=8,
            )
        )
        .with_row(db.Row("Context window"))
        .with_panel(
            series(
                "Prompts cut to fit the context window",
                RATIO,
                "Share of each model's calls whose prompt filled the context window"
                " (prompt_eval_count ≥ num_ctx): Ollama silently dropped tokens. 0 when none"
                " was (5-minute rates, recorded by deploy/rules; docs/attributes.md).",
                promql(recorded(RECORDED_TRUNCATION_RATIO), legend(MODEL)),
                width=8,
            )
        )
        .with_panel(
            series(
                "Truncated prompts by model",
                COUNT,
                "Calls whose prompt filled the context window, per rate interval.",
                promql(
                    f"sum by ({MODEL}) (increase({CONTEXT_TRUNCATIONS}{{{SELECTOR}}}[{RATE}]))",
                    legend(MODEL),
                ),
                width=8,
            )
        )
        .with_panel(
            series(
                "Context window used p95 by model",
                RATIO,
                "95th percentile of prompt tokens / context window; 100 % is a cut prompt.",
                promql(quantile(0.95, CONTEXT_UTILIZATION, MODEL), legend(MODEL)),
                width=8,
            )
        )
        .with_row(db.Row("Queueing: client vs Ollama time"))
        .with_panel(
            series(
                "Client vs Ollama time by model (mean)",
                SECONDS,
                "Mean call duration as the app saw it next to Ollama's own total_duration,"
                " per model: a growing gap with a flat Ollama line is a saturated server"
                " (OLLAMA_NUM_PARALLEL reached), not a slow model.",
                promql(
                    f"sum by ({MODEL}) ({rate(OPERATION_DURATION + '_sum', OLLAMA_CALLS)})"
                    f" / sum by ({MODEL}) ({rate(OPERATION_DURATION + '_count', OLLAMA_CALLS)})",
                    "client " + legend(MODEL),
                    "A",
                ),
                promql(
                    f"sum by ({MODEL}) ({rate(SERVER_REQUEST_DURATION + '_sum')})"
                    f" / sum by ({MODEL}) ({rate(SERVER_REQUEST_DURATION + '_count')})",
                    "ollama " + legend(MODEL),
                    "B",
                ),
            )
        )
        .with_panel(
            series(
                "Time outside Ollama p95 by model",
                SECONDS,
                "Client duration minus Ollama's total_duration: queued behind other"
                " requests, waiting for a load, or on the wire. Exemplar dots open the trace.",
                promql(quantile(0.95, WAIT_DURATION, MODEL), legend(MODEL), exemplar=True),
            )
        )
        .with_row(db.Row("Model operations"))
        .with_panel(
            series(
                "Model operations p95 by operation",
                SECONDS,
                "Pull, push, create, copy, delete and show: how long they took (spans named"
                " after the operation and model).",
                promql(
                    f"histogram_quantile(0.95, sum by (le, {MODEL_OPERATION}) (rate("
                    f"{MODEL_OPERATION_DURATION}_bucket{{{SERVER_SELECTOR}}}[{RATE}])))",
                    legend(MODEL_OPERATION),
                ),
            )
        )
        .with_panel(
            series(
                "Pulled bytes/s",
                BYTES_PER_SECOND,
                "Bytes Ollama downloaded for pulls (completed bytes of their layers).",
                promql(
                    f"sum by ({SERVER_ADDRESS})"
                    f" (rate({MODEL_PULLED}{{{SERVER_SELECTOR}}}[{RATE}]))",
                    legend(SERVER_ADDRESS),
                ),
            )
        )
        .with_row(db.Row("Usage by $tag"))
        .with_panel(
            series(
                "Tokens/s by $tag",
                TOKENS_PER_SECOND,
                "Input and output tokens per second per value of the chosen traffic tag."
                " Only tags named in metric_tags / OTEL_LLM_METRIC_TAGS reach metrics; past"
                " max_tag_values distinct values they read _OTHER.",
                promql(
                    f"sum by ({TAG}, {TOKEN_TYPE}) ({rate(TOKEN_USAGE + '_sum')})",
                    legend(TAG, TOKEN_TYPE),
                ),
                width=8,
                stack=True,
            )
        )
        .with_panel(
            series(
                "Calls/s by $tag",
                PER_SECOND,
                "LLM calls per second per value of the chosen traffic tag.",
                promql(
                    f"sum by ({TAG}) ({rate(OPERATION_DURATION + '_count')})",
                    "{{" + TAG + "}}",
                ),
                width=8,
            )
        )
        .with_panel(
            series(
                "Call duration p95 by $tag",
                SECONDS,
                "95th percentile of call duration per value of the chosen traffic tag.",
                promql(quantile(0.95, OPERATION_DURATION, TAG), "{{" + TAG + "}}"),
                width=8,
            )
        )
        .with_row(db.Row("Recent slow or failed calls"))
        # Two panels, not two targets in one: Grafana's Jaeger datasource runs only the
        # first target of a panel.
        .with_panel(
            traces_table(
                "Recent slow LLM traces (≥ $slow)",
                "From Jaeger: traces of $service that took at least $slow. Click a row to"
                " open its trace in Call chains.",
                trace_search("A", service="${service}", minDuration="${slow}", limit=20),
                width=12,
                height=10,
            )
        )
        .with_panel(
            traces_table(
                "Recent failed LLM traces",
                "From Jaeger: traces of $service with a span whose status is error. Click a"
                " row to open its trace in Call chains.",
                trace_search("A", service="${service}", tags="error=true", limit=20),
                width=12,
                height=10,
            )
        )
    )


# -- Call chains ----------------------------------------------------------------------------
def call_chains() -> db.Dashboard:
    return (
        base(
            "LLM call chains",
            CHAINS_UID,
            "Traces from Jaeger: find the request → retrieve → chat → tool → chat chains"
            " by service, model and duration, open one, and see which services call which.",
        )
        .link(link("LLM overview", OVERVIEW_UID))
        .with_variable(
            variable(
                "service", "Service", f"label_values({OPERATION_DURATION}_count, {SERVICE})", None
            )
        )
        .with_variable(
            variable(
                "model",
                "Model",
                f'label_values({OPERATION_DURATION}_count{{{SERVICE}=~"$service"}}, {MODEL})',
                None,
            )
        )
        .with_variable(
            db.CustomVariable("min_duration")
            .label("Min duration")
            .values("0ms,100ms,500ms,1s,5s,30s")
            .current(model.VariableOption(selected=True, text="0ms", value="0ms"))
        )
        .with_variable(
            db.CustomVariable("model_operation")
            .label("Model operation")
            .values("pull,push,create,copy,delete,show")
            .current(model.VariableOption(selected=True, text="pull", value="pull"))
        )
        .with_variable(
            db.TextBoxVariable("trace_id")
            .label("Trace id")
            .description("Paste a trace id, or click one in a table above.")
        )
        .with_panel(
            series(
                "LLM calls/s of $service by operation",
                PER_SECOND,
                "How much traffic the chains below come from.",
                promql(
                    f"sum by ({OPERATION}, {MODEL}) (rate({OPERATION_DURATION}_count"
                    f'{{{SERVICE}=~"$service"}}[{RATE}]))',
                    legend(OPERATION, MODEL),
                ),
                width=24,
            ).height(6)
        )
        .with_panel(
            traces_table(
                "Traces of $service calling $model (≥ $min_duration)",
                "Jaeger search; click a row to open its trace in the panel below.",
                trace_search(
                    "A",
                    service="${service}",
                    tags="gen_ai.request.model=${model}",
                    minDuration="${min_duration}",
                    limit=50,
                ),
                width=12,
                height=9,
            )
        )
        .with_panel(
            traces_table(
                "Failed traces of $service",
                "Traces with a span whose status is error.",
                trace_search("A", service="${service}", tags="error=true", limit=50),
                width=12,
                height=9,
            )
        )
        .with_panel(
            traces_table(
                "Model operations of $service: $model_operation",
                "Pull, push, create, copy, delete and show spans (not GenAI spans: named"
                " after the operation and model, attributes ollama.operation.*). Click a row"
                " to see the operation in its trace, next to the calls around it.",
                trace_search(
                    "A",
                    service="${service}",
                    tags="ollama.operation.name=${model_operation}",
                    limit=50,
                ),
                width=24,
                height=7,
            )
        )
        .with_panel(
            db.Panel()
            .type("traces")
            .title("Trace ${trace_id}")
            .description("The selected trace as a waterfall: every step of the chain.")
            .unit(MILLISECONDS)
            .datasource(JAEGER)
            .height(14)
            .span(24)
            .with_target(Jaeger("A", None, query="${trace_id}"))
        )
        .with_panel(
            nodegraph.Panel()
            .title("Service dependencies")
            .description("Which services call which, from Jaeger's dependency data.")
            .unit(COUNT)
            .datasource(JAEGER)
            .height(10)
            .span(24)
            .with_target(Jaeger("A", "dependencyGraph"))
        )
    )


DASHBOARDS = {"llm-overview.json": overview, "call-chains.json": call_chains}


def render(dashboard: db.Dashboard) -> str:
    """The dashboard as committed: sorted keys, two-space indent, panel ids in order."""
    built = dashboard.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    data = json.loads(JSONEncoder(sort_keys=True).encode(built))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    args = parser.parse_args(argv)
    stale = []
    for name, make in DASHBOARDS.items():
        path = args.out / name
        text = render(make())
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale: " + ", ".join(stale) + " (run python dashboards/build.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
