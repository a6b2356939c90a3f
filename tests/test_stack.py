"""The observability stack, checked without Docker.

``docker-compose.observability.yml`` against the compose specification's JSON schema;
every file it mounts present; images pinned; ports on loopback only. The collector and
Jaeger configs linted structurally (every pipeline component defined and used, connectors
wired both ways, memory_limiter first and batch last, known current component names and
option keys); ports consistent across compose, collector, Jaeger, Prometheus, Grafana and
the SDK's OTLP defaults. Every option of every collector-style config typed against the
Go field it decodes into (the Collector decodes strictly), deprecated options refused.
Grafana datasources' jsonData keys checked against what each plugin reads. Prometheus
configs (with their rule files) through a real ``promtool``. The production manifests
(``deploy/production/``) parsed and linted the same way.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.observability.yml"
DEPLOY = ROOT / "deploy"
PRODUCTION = DEPLOY / "production"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


COMPOSE: dict[str, Any] = load(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]
COLLECTOR: dict[str, Any] = load(DEPLOY / "collector.yaml")
JAEGER: dict[str, Any] = load(DEPLOY / "jaeger.yaml")
DATASOURCES: dict[str, Any] = load(DEPLOY / "grafana/provisioning/datasources/datasources.yaml")
PROVIDERS: dict[str, Any] = load(DEPLOY / "grafana/provisioning/dashboards/dashboards.yaml")


# -- collector-config lint -------------------------------------------------------------------
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
SIGNALS = ("traces", "metrics", "logs")

# Component types we use, by their current names (otelcol-contrib 0.160), each with the
# option keys we allow (from each component's config.go / config.schema.yaml): a typo in
# a key or a renamed component fails here instead of at `docker compose up`.
_HTTP_SERVER = {"endpoint", "tls", "cors", "auth", "include_metadata", "response_headers"}
KNOWN: dict[str, dict[str, set[str]]] = {
    "receivers": {"otlp": {"protocols"}},
    "processors": {
        "memory_limiter": {
            "check_interval",
            "limit_mib",
            "spike_limit_mib",
            "limit_percentage",
            "spike_limit_percentage",
        },
        "batch": {
            "send_batch_size",
            "send_batch_max_size",
            "timeout",
            "metadata_keys",
            "metadata_cardinality_limit",
        },
        "transform": {"error_mode", "trace_statements", "metric_statements", "log_statements"},
        "resource": {"attributes"},
        "tail_sampling": {
            "decision_wait",
            "num_traces",
            "expected_new_traces_per_sec",
            "decision_cache",
            "policies",
            "sample_on_first_match",
            "drop_pending_traces_on_shutdown",
        },
    },
    "exporters": {
        "otlp_grpc": {
            "endpoint",
            "tls",
            "headers",
            "compression",
            "timeout",
            "sending_queue",
            "retry_on_failure",
            "balancer_name",
            "keepalive",
            "auth",
        },
        "prometheus": {
            "endpoint",
            "tls",
            "namespace",
            "const_labels",
            "send_timestamps",
            "metric_expiration",
            "resource_constant_labels",
            "enable_open_metrics",
            "without_scope_info",
            "translation_strategy",
            "sending_queue",
        },
        "loadbalancing": {
            "routing_key",
            "protocol",
            "resolver",
            "timeout",
            "sending_queue",
            "retry_on_failure",
        },
    },
    "connectors": {
        "span_metrics": {
            "histogram",
            "dimensions",
            "exemplars",
            "metrics_flush_interval",
            "namespace",
            "resource_metrics_key_attributes",
            "aggregation_temporality",
            "dimensions_cache_size",
            "metrics_expiration",
            "events",
            "include_instrumentation_scope",
            "aggregation_cardinality_limit",
            "add_resource_attributes",
        },
    },
    "extensions": {"health_check": _HTTP_SERVER | {"path", "check_collector_pipeline"}},
}
# Renamed types that still load as deprecated aliases: use the new names.
DEPRECATED = {"otlp@exporters": "otlp_grpc", "otlphttp": "otlp_http", "spanmetrics": "span_metrics"}
# Components Jaeger v2's binary adds to the collector's.
JAEGER_KNOWN: dict[str, dict[str, set[str]]] = {
    "receivers": {"otlp": {"protocols"}},
    "processors": {"batch": KNOWN["processors"]["batch"]},
    "exporters": {"jaeger_storage_exporter": {"trace_storage", "queue", "sending_queue"}},
    "connectors": {},
    "extensions": {
        "jaeger_storage": {"backends", "metric_backends"},
        "jaeger_query": {
            "storage",
            "http",
            "grpc",
            "ui",
            "base_path",
            "max_clock_skew_adjust",
            "ai",
            "otlp_proxy",
            "enable_tracing",
            "query_interceptors",
        },
        "healthcheckv2": {"use_v2", "http", "grpc", "component_health"},
    },
}


def component_type(name: str) -> str:
    """``otlp_grpc/jaeger`` → ``otlp_grpc``."""
    return name.split("/", 1)[0]


def lint_collector(
    config: Mapping[str, Any], known: Mapping[str, Mapping[str, set[str]]]
) -> list[str]:
    """Every structural problem in a collector config (empty when it is sound)."""
    problems: list[str] = []
    defined = {kind: dict(config.get(kind) or {}) for kind in KINDS}
    service = config.get("service") or {}
    pipelines: dict[str, Any] = service.get("pipelines") or {}
    if not pipelines:
        problems.append("no pipelines")
    for kind in KINDS:
        for name, options in defined[kind].items():
            ctype = component_type(name)
            if f"{ctype}@{kind}" in DEPRECATED or ctype in DEPRECATED:
                new = DEPRECATED.get(f"{ctype}@{kind}") or DEPRECATED[ctype]
                problems.append(f"{kind}.{name}: deprecated type name, use {new}")
                continue
            if ctype not in known[kind]:
                problems.append(f"{kind}.{name}: unknown component type {ctype!r}")
                continue
            unknown = set(options or {}) - known[kind][ctype]
            if unknown:
                problems.append(f"{kind}.{name}: unknown options {sorted(unknown)}")
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    connectors_in: set[str] = set()
    connectors_out: set[str] = set()
    for pname, pipeline in pipelines.items():
        if component_type(pname) not in SIGNALS:
            problems.append(f"pipeline {pname}: not a traces/metrics/logs pipeline")
        receivers = pipeline.get("receivers") or []
        processors = pipeline.get("processors") or []
        exporters = pipeline.get("exporters") or []
        if not receivers or not exporters:
            problems.append(f"pipeline {pname}: needs receivers and exporters")
        for name in receivers:
            if name in defined["connectors"]:
                connectors_out.add(name)
            elif name in defined["receivers"]:
                used["receivers"].add(name)
            else:
                problems.append(f"pipeline {pname}: receiver {name} is not defined")
        for name in exporters:
            if name in defined["connectors"]:
                connectors_in.add(name)
            elif name in defined["exporters"]:
                used["exporters"].add(name)
            else:
                problems.append(f"pipeline {pname}: exporter {name} is not defined")
        for name in processors:
            if name not in defined["processors"]:
                problems.append(f"pipeline {pname}: processor {name} is not defined")
            used["processors"].add(name)
        fed_by_receiver = any(name in defined["receivers"] for name in receivers)
        limited = fed_by_receiver and "memory_limiter" in defined["processors"]
        if limited and processors[:1] != ["memory_limiter"]:
            problems.append(f"pipeline {pname}: memory_limiter must come first")
        batches = [p for p in processors if component_type(p) == "batch"]
        if batches and processors[-1] != batches[0]:
            problems.append(f"pipeline {pname}: batch must come last")
    used["connectors"] = connectors_in & connectors_out
    for name in defined["connectors"]:
        if name not in connectors_in or name not in connectors_out:
            problems.append(
                f"connector {name}: must be an exporter of one pipeline and a receiver of another"
            )
    used["extensions"] = set(service.get("extensions") or [])
    for name in used["extensions"] - set(defined["extensions"]):
        problems.append(f"service.extensions: {name} is not defined")
    for kind in KINDS:
        for name in set(defined[kind]) - used[kind]:
            problems.append(f"{kind}.{name}: defined but unused")
    return problems


# -- collector-config field types ------------------------------------------------------------
# The Collector decodes its config strictly (confmap, no weak typing since v0.105): a YAML
# integer where the Go field is a `string` (or the reverse) stops the process at start-up.
# So every option we set is typed here, by the Go type of its field, read from each
# component's config struct (config.go, or the generated config.schema.yaml beside it) in
# open-telemetry/opentelemetry-collector(-contrib) and jaegertracing/jaeger. An option
# missing from this table fails the test too: type it from its source before shipping it.
#   string / int / float / bool / duration (a Go time.Duration: a string like "5s")
#   [x]: a YAML list of x;  any: any scalar (e.g. an attribute value)
# Paths are dotted; `*` matches one key (a user-chosen name); `[]` is an element of a list.
def _exporter_helper(prefix: str = "") -> dict[str, str]:
    """exporterhelper (collector exporter/exporterhelper): timeout, queue and retry."""
    return {
        prefix + "timeout": "duration",
        prefix + "sending_queue.enabled": "bool",
        prefix + "sending_queue.num_consumers": "int",
        prefix + "sending_queue.queue_size": "int",
        prefix + "retry_on_failure.enabled": "bool",
        prefix + "retry_on_failure.initial_interval": "duration",
        prefix + "retry_on_failure.max_interval": "duration",
        prefix + "retry_on_failure.max_elapsed_time": "duration",
    }


def _grpc_client(prefix: str = "") -> dict[str, str]:
    """configgrpc.ClientConfig + configtls.ClientConfig (collector config/configgrpc, configtls)."""
    return {
        prefix + "endpoint": "string",
        prefix + "compression": "string",
        prefix + "balancer_name": "string",
        prefix + "tls.insecure": "bool",
        prefix + "tls.insecure_skip_verify": "bool",
        prefix + "tls.ca_file": "string",
        prefix + "tls.cert_file": "string",
        prefix + "tls.key_file": "string",
        prefix + "tls.server_name_override": "string",
        prefix + "headers.*": "string",
        **_exporter_helper(prefix),
    }


_INDEX_OPTIONS = {
    # jaegertracing/jaeger internal/storage/elasticsearch/config/config.go (IndexOptions)
    # and config_rotation.go (RotationConfig, PeriodicRotation).
    "shards": "int",
    "replicas": "int",
    "priority": "int",
    "rotation.periodic.date_layout": "string",
    "rotation.periodic.rollover_frequency": "string",
    "rotation.manual_rollover.read_alias": "string",
    "rotation.manual_rollover.write_alias": "string",
    "rotation.auto_rollover.read_alias": "string",
    "rotation.auto_rollover.write_alias": "string",
    "rotation.auto_rollover.policy_name": "string",
}
_SEARCH_BACKEND = {
    # jaegertracing/jaeger internal/storage/elasticsearch/config/config.go (Configuration)
    "server_urls": "[string]",
    "auth.basic.username": "string",
    "auth.basic.password": "string",
    "auth.basic.password_file": "string",
    "tls.insecure": "bool",
    "tls.ca_file": "string",
    "indices.index_prefix": "string",
    "query_timeout": "duration",
    "max_span_age": "duration",
    **{
        f"indices.{index}.{key}": kind
        for index in ("spans", "services", "dependencies", "sampling")
        for key, kind in _INDEX_OPTIONS.items()
    },
}

FIELD_TYPES: dict[str, dict[str, dict[str, str]]] = {
    "receivers": {
        # collector receiver/otlpreceiver/config.go (configgrpc.ServerConfig,
        # confighttp.ServerConfig: Endpoint string)
        "otlp": {"protocols.grpc.endpoint": "string", "protocols.http.endpoint": "string"},
    },
    "processors": {
        # collector internal/memorylimiter/config.go
        "memory_limiter": {
            "check_interval": "duration",
            "limit_mib": "int",
            "spike_limit_mib": "int",
            "limit_percentage": "int",
            "spike_limit_percentage": "int",
        },
        # collector processor/batchprocessor/config.go
        "batch": {
            "timeout": "duration",
            "send_batch_size": "int",
            "send_batch_max_size": "int",
            "metadata_keys": "[string]",
            "metadata_cardinality_limit": "int",
        },
        # contrib processor/resourceprocessor/config.go → internal/coreinternal/attraction
        "resource": {
            "attributes.[].key": "string",
            "attributes.[].value": "any",
            "attributes.[].action": "string",
            "attributes.[].from_attribute": "string",
        },
        # contrib processor/transformprocessor/config.go (+ pkg/ottl ContextStatements)
        "transform": {
            "error_mode": "string",
            **{
                f"{signal}_statements.[].{key}": kind
                for signal in ("trace", "metric", "log")
                for key, kind in (
                    ("context", "string"),
                    ("statements", "[string]"),
                    ("conditions", "[string]"),
                    ("error_mode", "string"),
                )
            },
        },
        # contrib processor/tailsamplingprocessor/config.go
        "tail_sampling": {
            "decision_wait": "duration",
            "num_traces": "int",
            "expected_new_traces_per_sec": "int",
            "decision_cache.sampled_cache_size": "int",
            "decision_cache.non_sampled_cache_size": "int",
            "policies.[].name": "string",
            "policies.[].type": "string",
            "policies.[].status_code.status_codes": "[string]",
            "policies.[].latency.threshold_ms": "int",
            "policies.[].latency.upper_threshold_ms": "int",
            "policies.[].ottl_condition.error_mode": "string",
            "policies.[].ottl_condition.span": "[string]",
            "policies.[].ottl_condition.spanevent": "[string]",
            "policies.[].boolean_attribute.key": "string",
            "policies.[].boolean_attribute.value": "bool",
            "policies.[].probabilistic.sampling_percentage": "float",
            "policies.[].probabilistic.hash_salt": "string",
        },
    },
    "exporters": {
        # collector exporter/otlpexporter/config.go
        "otlp_grpc": _grpc_client(),
        # contrib exporter/loadbalancingexporter/config.go (and config.schema.yaml):
        # DNSResolver.Port is a string; K8sSvcResolver.Ports a []int32.
        "loadbalancing": {
            "routing_key": "string",
            "routing_attributes": "[string]",
            "resolver.dns.hostname": "string",
            "resolver.dns.port": "string",
            "resolver.dns.interval": "duration",
            "resolver.dns.timeout": "duration",
            "resolver.static.hostnames": "[string]",
            "resolver.k8s.service": "string",
            "resolver.k8s.ports": "[int]",
            "resolver.k8s.timeout": "duration",
            **_grpc_client("protocol.otlp."),
            **_exporter_helper(),
        },
        # contrib exporter/prometheusexporter/config.go
        "prometheus": {
            "endpoint": "string",
            "namespace": "string",
            "const_labels.*": "string",
            "send_timestamps": "bool",
            "metric_expiration": "duration",
            "enable_open_metrics": "bool",
            "without_scope_info": "bool",
            "translation_strategy": "string",
            "resource_constant_labels.included": "[string]",
            "resource_constant_labels.excluded": "[string]",
        },
        # jaegertracing/jaeger cmd/jaeger/internal/exporters/storageexporter/config.go
        "jaeger_storage_exporter": {"trace_storage": "string"},
    },
    "connectors": {
        # contrib connector/spanmetricsconnector/config.go
        "span_metrics": {
            "histogram.unit": "string",
            "histogram.disable": "bool",
            "histogram.explicit.buckets": "[duration]",
            "histogram.exponential.max_size": "int",
            "dimensions.[].name": "string",
            "dimensions.[].default": "string",
            "exemplars.enabled": "bool",
            "exemplars.max_per_data_point": "int",
            "metrics_flush_interval": "duration",
            "metrics_expiration": "duration",
            "namespace": "string",
            "aggregation_temporality": "string",
            "dimensions_cache_size": "int",
            "aggregation_cardinality_limit": "int",
        },
    },
    "extensions": {
        # contrib extension/healthcheckextension/config.go
        "health_check": {"endpoint": "string", "path": "string"},
        # contrib extension/healthcheckv2extension/config.go
        "healthcheckv2": {"use_v2": "bool", "http.endpoint": "string", "grpc.endpoint": "string"},
        # jaegertracing/jaeger cmd/jaeger/internal/extension/jaegerquery/config.go
        "jaeger_query": {
            "storage.traces": "string",
            "storage.traces_archive": "string",
            "storage.metrics": "string",
            "http.endpoint": "string",
            "grpc.endpoint": "string",
            "base_path": "string",
        },
        # jaegertracing/jaeger cmd/jaeger/internal/extension/jaegerstorage/config.go, with
        # the memory store's and the Prometheus metrics store's config.go
        "jaeger_storage": {
            "backends.*.memory.max_traces": "int",
            **{
                f"backends.*.{kind}.{k}": v
                for kind in ("opensearch", "elasticsearch")
                for k, v in _SEARCH_BACKEND.items()
            },
            "metric_backends.*.prometheus.endpoint": "string",
            "metric_backends.*.prometheus.normalize_calls": "bool",
            "metric_backends.*.prometheus.normalize_duration": "bool",
            "metric_backends.*.prometheus.latency_unit": "string",
        },
    },
    # `service.telemetry` (collector service/telemetry, otelconf: the Prometheus pull
    # exporter's port is an *int, unlike the loadbalancing resolver's)
    "service": {
        "telemetry": {
            "metrics.level": "string",
            "metrics.readers.[].pull.exporter.prometheus.host": "string",
            "metrics.readers.[].pull.exporter.prometheus.port": "int",
            "resource.*": "string",
        },
    },
}

# Options that still load but are deprecated, with their replacement.
DEPRECATED_OPTIONS: dict[str, dict[str, str]] = {
    # jaeger config_rotation.go: "use 'rotation.periodic' instead"
    "jaeger_storage": {
        f"backends.*.{kind}.indices.*.{key}": f"indices.<index>.rotation.periodic.{key}"
        for kind in ("opensearch", "elasticsearch")
        for key in ("date_layout", "rollover_frequency")
    },
}

_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def _is(kind: str, value: Any) -> bool:
    """Whether a YAML value decodes into a Go field of this kind without weak typing."""
    if kind.startswith("["):
        return isinstance(value, list) and all(_is(kind[1:-1], v) for v in value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "duration":
        return isinstance(value, str) and _DURATION.fullmatch(value) is not None
    assert kind == "any", kind
    return not isinstance(value, (dict, list))


def leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, value)`` of every option value; a list of scalars is one value."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, str(key)))
    elif isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
        for value in node:
            yield from leaves(value, (*path, "[]"))
    elif node is not None:
        yield path, node


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(p in ("*", k) for p, k in zip(parts, path, strict=True))


def type_problems(config: Mapping[str, Any]) -> list[str]:
    """Every option of a collector config whose YAML type its Go field would reject."""
    sections = [(kind, dict(config.get(kind) or {})) for kind in KINDS]
    sections.append(("service", {"telemetry": (config.get("service") or {}).get("telemetry")}))
    problems: list[str] = []
    for kind, components in sections:
        for name, options in components.items():
            ctype = component_type(name)
            table = FIELD_TYPES.get(kind, {}).get(ctype)
            if table is None:
                problems.append(f"{kind}.{name}: no field types for {ctype!r}")
                continue
            for path, value in leaves(options):
                where = f"{kind}.{name}.{'.'.join(path)}"
                old = [
                    new for p, new in DEPRECATED_OPTIONS.get(ctype, {}).items() if _matches(p, path)
                ]
                if old:
                    problems.append(f"{where}: deprecated, use {old[0]}")
                    continue
                kinds = [k for p, k in table.items() if _matches(p, path)]
                if not kinds:
                    problems.append(f"{where}: untyped option (add it to FIELD_TYPES)")
                elif not _is(kinds[0], value):
                    problems.append(f"{where}: expected {kinds[0]}, got {value!r}")
    return problems


def port(endpoint: str) -> int:
    """The port of ``host:port`` or ``scheme://host:port/path``."""
    if "://" in endpoint:
        value = urlsplit(endpoint).port
        assert value is not None, endpoint
        return value
    return int(endpoint.rsplit(":", 1)[1])


def host(endpoint: str) -> str:
    if "://" in endpoint:
        return urlsplit(endpoint).hostname or ""
    return endpoint.rsplit(":", 1)[0]


def published(service: str) -> dict[int, str]:
    """Container port → the host address it is published on."""
    out: dict[int, str] = {}
    for spec in SERVICES[service].get("ports", []):
        address, _host_port, container = str(spec).rsplit(":", 2)
        out[int(container.split("/")[0])] = address
    return out


class TestCompose:
    def test_matches_the_compose_specification(self) -> None:
        """The file validates against check-jsonschema's vendored compose-spec schema."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "check_jsonschema",
                "--builtin-schema",
                "vendor.compose-spec",
                str(COMPOSE_FILE),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == result.returncode, result.stdout + result.stderr

    def test_every_mounted_file_exists(self) -> None:
        """Each bind mount's source (and the proxy's build context) is in the repo."""
        missing = []
        for name, service in SERVICES.items():
            for volume in service.get("volumes", []):
                source = str(volume).split(":", 1)[0]
                if source.startswith((".", "/")) and not (ROOT / source).exists():
                    missing.append(f"{name}: {source}")
            build = service.get("build")
            if build:
                context = ROOT / build.get("context", ".")
                if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                    missing.append(f"{name}: {build}")
        assert [] == missing

    def test_named_volumes_are_declared(self) -> None:
        """Every named volume a service uses is declared at the top level."""
        named = {
            str(v).split(":", 1)[0]
            for s in SERVICES.values()
            for v in s.get("volumes", [])
            if not str(v).startswith((".", "/"))
        }
        assert named and named == set(COMPOSE.get("volumes") or {})

    def test_image_tags_are_pinned(self) -> None:
        """Every image names a version: no `latest`, no bare name."""
        loose = []
        for name, service in SERVICES.items():
            image = service.get("image", "")
            repo, _, tag = image.rpartition(":")
            if not repo or "/" in tag or tag in ("", "latest"):
                loose.append(f"{name}: {image}")
        assert [] == loose

    def test_ports_are_published_on_loopback_only(self) -> None:
        """Nothing listens on the host's other interfaces."""
        exposed = [
            f"{name}: {spec}"
            for name, service in SERVICES.items()
            for spec in service.get("ports", [])
            if not str(spec).startswith("127.0.0.1:")
        ]
        assert [] == exposed

    def test_every_service_has_a_health_check(self) -> None:
        """Each service declares a health check."""
        assert [] == [
            n for n, s in SERVICES.items() if not (s.get("healthcheck") or {}).get("test")
        ]

    def test_the_four_parts_and_the_ollama_profile(self) -> None:
        """Collector, Jaeger v2, Prometheus 3, Grafana; Ollama and the proxy behind a profile."""
        images = {name: s["image"].rsplit(":", 1) for name, s in SERVICES.items()}
        assert "otel/opentelemetry-collector-contrib" == images["otel-collector"][0]
        assert images["jaeger"][0] == "jaegertracing/jaeger" and images["jaeger"][1].startswith(
            "2."
        )
        assert images["prometheus"][0] == "prom/prometheus" and images["prometheus"][1].startswith(
            "v3."
        )
        assert "grafana/grafana" == images["grafana"][0]
        assert "ollama/ollama" == images["ollama"][0]
        profiled = {n: s.get("profiles") for n, s in SERVICES.items() if s.get("profiles")}
        assert {"ollama": ["ollama"], "proxy": ["ollama"]} == profiled

    def test_proxy_is_wired_to_ollama_and_the_collector(self) -> None:
        """The proxy runs the documented command and exports OTLP to the collector."""
        proxy = SERVICES["proxy"]
        assert [
            "otel-llm",
            "proxy",
            "--listen",
            "0.0.0.0:11435",
            "--upstream",
            "http://ollama:11434",
            "--admin",
            "0.0.0.0:9465",
        ] == proxy["command"]
        assert "http://otel-collector:4318" == proxy["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert 11434 in published("ollama")

    def test_dockerfile_installs_the_package_with_the_testing_extra(self) -> None:
        """Python slim base, `pip install .[testing]`, the proxy command."""
        text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
        assert re.search(r"^FROM python:[\d.]+-slim", text, re.M)
        assert 'pip install ".[testing]"' in text
        assert '"otel-llm", "proxy", "--listen", "0.0.0.0:11435"' in text

    def test_prometheus_keeps_exemplars(self) -> None:
        """Prometheus runs with exemplar storage on."""
        assert "--enable-feature=exemplar-storage" in SERVICES["prometheus"]["command"]

    def test_docs_list_every_published_port(self) -> None:
        """docs/stack.md documents the OTLP endpoint and every published port."""
        text = (ROOT / "docs" / "stack.md").read_text(encoding="utf-8")
        assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" in text
        ports = {p for name in SERVICES for p in published(name)}
        assert set() == {p for p in ports if f"| {p} |" not in text}

    def test_grafana_allows_anonymous_viewers(self) -> None:
        """Anonymous access is on, read-only."""
        env = SERVICES["grafana"]["environment"]
        assert ("true", "Viewer") == (
            env["GF_AUTH_ANONYMOUS_ENABLED"],
            env["GF_AUTH_ANONYMOUS_ORG_ROLE"],
        )


class TestCollectorConfig:
    def test_is_structurally_sound(self) -> None:
        """Components defined, used, wired; current names; known option keys."""
        assert [] == lint_collector(COLLECTOR, KNOWN)

    def test_the_lint_finds_problems(self) -> None:
        """The lint itself catches an undefined exporter, a deprecated name and a typo."""
        broken = yaml.safe_load(yaml.safe_dump(COLLECTOR))
        broken["service"]["pipelines"]["traces"]["exporters"].append("otlp/elsewhere")
        broken["connectors"]["spanmetrics"] = broken["connectors"].pop("span_metrics")
        broken["exporters"]["prometheus"]["enable_openmetrics"] = True
        problems = "\n".join(lint_collector(broken, KNOWN))
        assert "exporter otlp/elsewhere is not defined" in problems
        assert "deprecated type name, use span_metrics" in problems
        assert "unknown options ['enable_openmetrics']" in problems

    def test_otlp_ports_are_the_sdk_defaults_and_published(self) -> None:
        """The collector listens on 4317 (gRPC) and 4318 (HTTP): the SDK's defaults, on loopback."""
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import DEFAULT_ENDPOINT

        protocols = COLLECTOR["receivers"]["otlp"]["protocols"]
        grpc, http = port(protocols["grpc"]["endpoint"]), port(protocols["http"]["endpoint"])
        saved = {
            k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OTEL_EXPORTER_OTLP")
        }
        try:
            sdk_grpc = port(GrpcExporter()._endpoint)
        finally:
            os.environ.update(saved)
        assert (sdk_grpc, port(DEFAULT_ENDPOINT)) == (grpc, http)
        assert {grpc: "127.0.0.1", http: "127.0.0.1"}.items() <= published("otel-collector").items()

    def test_traces_go_to_jaeger_over_otlp(self) -> None:
        """The trace exporter targets the compose `jaeger` service on Jaeger's OTLP gRPC port."""
        endpoint = COLLECTOR["exporters"]["otlp_grpc/jaeger"]["endpoint"]
        jaeger_grpc = JAEGER["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        assert ("jaeger", port(jaeger_grpc)) == (host(endpoint), port(endpoint))
        assert "jaeger" in SERVICES

    def test_metrics_go_to_prometheus_as_openmetrics(self) -> None:
        """OpenMetrics on (exemplars), dashboard filters kept as labels, scraped by Prometheus."""
        exporter = COLLECTOR["exporters"]["prometheus"]
        assert exporter["enable_open_metrics"] is True
        labels = set(exporter["resource_constant_labels"]["included"])
        assert {"service.name", "deployment.environment.name"} <= labels
        assert "prometheus" in COLLECTOR["service"]["pipelines"]["metrics"]["exporters"]
        targets = scrape_targets(load(DEPLOY / "prometheus.yml"), "otel-collector")
        assert [f"otel-collector:{port(exporter['endpoint'])}"] == targets

    def test_health_check_is_on(self) -> None:
        """The health_check extension runs on the published port 13133."""
        assert ["health_check"] == COLLECTOR["service"]["extensions"]
        health = port(COLLECTOR["extensions"]["health_check"]["endpoint"])
        assert "127.0.0.1" == published("otel-collector")[health]

    def test_compose_mounts_the_config_where_the_command_reads_it(self) -> None:
        """The collector's --config path is the mounted deploy/collector.yaml."""
        service = SERVICES["otel-collector"]
        target = mount_target(service, "./deploy/collector.yaml")
        assert [f"--config={target}"] == service["command"]


class TestJaegerConfig:
    def test_is_structurally_sound(self) -> None:
        """Jaeger v2's collector-style config passes the same lint."""
        assert [] == lint_collector(JAEGER, JAEGER_KNOWN)

    def test_storage_names_resolve(self) -> None:
        """Query and exporter name storages that jaeger_storage defines; SPM reads Prometheus."""
        storage = JAEGER["extensions"]["jaeger_storage"]
        query = JAEGER["extensions"]["jaeger_query"]["storage"]
        assert query["traces"] in storage["backends"]
        assert (
            JAEGER["exporters"]["jaeger_storage_exporter"]["trace_storage"] in storage["backends"]
        )
        spm = storage["metric_backends"][query["metrics"]]["prometheus"]
        assert ("prometheus", 9090) == (host(spm["endpoint"]), port(spm["endpoint"]))
        assert spm["latency_unit"] == COLLECTOR["connectors"]["span_metrics"]["histogram"]["unit"]

    def test_ui_and_health_ports_match_compose(self) -> None:
        """The UI port is published; the health check probes healthcheckv2's port."""
        ui = port(JAEGER["extensions"]["jaeger_query"]["http"]["endpoint"])
        health = port(JAEGER["extensions"]["healthcheckv2"]["http"]["endpoint"])
        assert "127.0.0.1" == published("jaeger")[ui]
        assert f":{health}/status" in " ".join(SERVICES["jaeger"]["healthcheck"]["test"])
        assert ["--config=" + mount_target(SERVICES["jaeger"], "./deploy/jaeger.yaml")] == SERVICES[
            "jaeger"
        ]["command"]


def scrape_targets(config: Mapping[str, Any], job: str) -> list[str]:
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    return [t for group in jobs[job].get("static_configs", []) for t in group["targets"]]


def mount_target(service: Mapping[str, Any], source: str) -> str:
    for volume in service.get("volumes", []):
        parts = str(volume).split(":")
        if parts[0] == source:
            return parts[1]
    raise AssertionError(f"{source} is not mounted")


def promtool() -> str:
    return require("promtool", "prometheus")


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.real_component
class TestPrometheusConfigs:
    @pytest.mark.parametrize("name", ["prometheus.yml", "prometheus.test.yml"])
    def test_promtool_accepts(self, name: str) -> None:
        """promtool (Debian's 2.42) accepts the compose config and the test config."""
        result = check_config(DEPLOY / name)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_promtool_accepts_the_production_config(self, tmp_path: Path) -> None:
        """The production config passes promtool with kubernetes_sd swapped for static targets.

        Debian builds Prometheus without Kubernetes service discovery; everything else in
        the file (remote_write with exemplars, relabelling, storage) is checked as is.
        """
        config = load(PRODUCTION / "prometheus.yml")
        # The rules directory it mounts: the repo's deploy/rules, so promtool checks them.
        config["rule_files"] = [str(DEPLOY / "rules" / Path(p).name) for p in config["rule_files"]]
        for job in config["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["static_configs"] = [{"targets": ["pod.example:8889"]}]
        copy = tmp_path / "prometheus.yml"
        copy.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = check_config(copy)
        assert 0 == result.returncode, result.stdout + result.stderr

    def test_scrape_targets_are_compose_services(self) -> None:
        """Every static target of the compose config is a service of the compose file."""
        config = load(DEPLOY / "prometheus.yml")
        hosts = {
            t.rsplit(":", 1)[0]
            for job in config["scrape_configs"]
            for group in job.get("static_configs", [])
            for t in group["targets"]
        }
        assert set() == hosts - set(SERVICES) - {"localhost"}
        assert ["otel-collector:8888"] == scrape_targets(config, "otel-collector-internal")


# The jsonData keys each Grafana datasource plugin reads, nested one level where we set
# sub-keys (grafana/grafana: public/app/plugins/datasource/jaeger/configuration/
# ConfigEditor.tsx and TraceIdTimeParams.tsx, pkg/tsdb/jaeger (traceIdTimeParams.enabled),
# packages/grafana-o11y-ds-frontend TraceToMetricsSettings / TraceToLogsSettings; and
# packages/grafana-prometheus/src/types.ts PromOptions). A key another plugin reads (Tempo's
# `traceQuery`) is silently ignored by Grafana, so it fails here.
_TRACES_TO_METRICS = {"datasourceUid", "tags", "queries", "spanStartTimeShift", "spanEndTimeShift"}
JSON_DATA_KEYS: dict[str, dict[str, set[str] | None]] = {
    "jaeger": {
        "nodeGraph": {"enabled"},
        "traceIdTimeParams": {"enabled"},
        "spanBar": {"type", "tag"},
        "tracesToMetrics": _TRACES_TO_METRICS,
        "tracesToLogsV2": None,
        "timeout": None,
        "keepCookies": None,
        "oauthPassThru": None,
    },
    "prometheus": {
        "httpMethod": None,
        "timeInterval": None,
        "queryTimeout": None,
        "customQueryParameters": None,
        "exemplarTraceIdDestinations": None,
        "prometheusType": None,
        "prometheusVersion": None,
        "cacheLevel": None,
        "incrementalQuerying": None,
        "disableRecordingRules": None,
        "timeout": None,
        "keepCookies": None,
        "oauthPassThru": None,
    },
}


def json_data_problems(source: Mapping[str, Any]) -> list[str]:
    """Every jsonData key (and sub-key) the datasource's plugin does not read."""
    known = JSON_DATA_KEYS[source["type"]]
    problems = []
    for key, value in (source.get("jsonData") or {}).items():
        if key not in known:
            problems.append(f"{source['name']}: jsonData.{key} is not a {source['type']} option")
        elif known[key] is not None and isinstance(value, dict):
            problems.extend(
                f"{source['name']}: jsonData.{key}.{sub} is not a {source['type']} option"
                for sub in sorted(set(value) - set(known[key] or ()))
            )
    return problems


class TestGrafanaProvisioning:
    def datasources(self) -> dict[str, dict[str, Any]]:
        return {d["uid"]: d for d in DATASOURCES["datasources"]}

    def test_datasources_have_fixed_uids_and_point_at_compose_services(self) -> None:
        """Prometheus and Jaeger, with fixed uids, at the compose hostnames and ports."""
        sources = self.datasources()
        assert {"prometheus": "prometheus", "jaeger": "jaeger"} == {
            u: d["type"] for u, d in sources.items()
        }
        prom, jaeger = sources["prometheus"]["url"], sources["jaeger"]["url"]
        assert ("prometheus", 9090) == (host(prom), port(prom))
        assert ("jaeger", port(JAEGER["extensions"]["jaeger_query"]["http"]["endpoint"])) == (
            host(jaeger),
            port(jaeger),
        )

    def test_json_data_keys_are_read_by_the_plugin(self) -> None:
        """Every jsonData option is one the datasource's own plugin reads."""
        assert [] == [p for d in DATASOURCES["datasources"] for p in json_data_problems(d)]

    def test_a_tempo_option_on_jaeger_is_caught(self) -> None:
        """Tempo's traceQuery time shift on the Jaeger datasource is reported, and typos."""
        jaeger = yaml.safe_load(yaml.safe_dump(self.datasources()["jaeger"]))
        jaeger["jsonData"]["traceQuery"] = {"timeShiftEnabled": True}
        jaeger["jsonData"]["traceIdTimeParams"]["enable"] = True
        assert [
            "Jaeger: jsonData.traceIdTimeParams.enable is not a jaeger option",
            "Jaeger: jsonData.traceQuery is not a jaeger option",
        ] == json_data_problems(jaeger)

    def test_trace_by_id_uses_the_time_range(self) -> None:
        """The Jaeger datasource passes the time range when it fetches a trace by id."""
        assert {"enabled": True} == self.datasources()["jaeger"]["jsonData"]["traceIdTimeParams"]

    def test_exemplars_link_to_jaeger(self) -> None:
        """An exemplar's trace_id label opens the trace in the Jaeger datasource."""
        links = self.datasources()["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
        assert [{"name": "trace_id", "datasourceUid": "jaeger"}] == links

    def test_jaeger_links_to_metrics(self) -> None:
        """Trace to metrics: Prometheus queries keyed by the span's service and model."""
        t2m = self.datasources()["jaeger"]["jsonData"]["tracesToMetrics"]
        assert "prometheus" == t2m["datasourceUid"]
        assert {"service.name": "service_name", "gen_ai.request.model": "gen_ai_request_model"} == {
            t["key"]: t["value"] for t in t2m["tags"]
        }
        assert all("{$$__tags}" in q["query"] for q in t2m["queries"])

    def test_dashboards_load_from_the_mounted_files_into_the_llm_folder(self) -> None:
        """The provider's path holds exactly the mounted dashboard files, in folder LLM."""
        [provider] = PROVIDERS["providers"]
        assert ("LLM", "file") == (provider["folder"], provider["type"])
        path = provider["options"]["path"]
        mounted = {
            Path(str(v).split(":")[0]).name
            for v in SERVICES["grafana"]["volumes"]
            if str(v).split(":")[1].startswith(path + "/")
        }
        assert {p.name for p in (ROOT / "dashboards").glob("*.json")} == mounted
        for kind in ("datasources", "dashboards"):
            assert mount_target(
                SERVICES["grafana"], f"./deploy/grafana/provisioning/{kind}/{kind}.yaml"
            ).startswith(f"/etc/grafana/provisioning/{kind}/")


# -- production -----------------------------------------------------------------------------
@functools.cache
def manifests() -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(file name, document)`` for every document of deploy/production/*.yaml."""
    return tuple(
        (path.name, doc) for path in sorted(PRODUCTION.glob("*.yaml")) for doc in load_all(path)
    )


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {
        f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}": d
        for _, d in manifests()
        if d["kind"] == kind
    }


PRODUCTION_CONFIGS = ("otel-agent", "otel-gateway", "jaeger")


def configmap(name: str) -> dict[str, Any]:
    [config] = [d for key, d in by_kind("ConfigMap").items() if key.endswith("/" + name)]
    parsed: dict[str, Any] = yaml.safe_load(config["data"]["config.yaml"])
    return parsed


class TestProduction:
    def test_every_manifest_is_a_named_kubernetes_object(self) -> None:
        """Each YAML document has apiVersion, kind, metadata.name and namespace."""
        docs = list(manifests())
        assert docs
        bad = [
            f"{f}: {d.get('kind')}"
            for f, d in docs
            if not (
                d.get("apiVersion")
                and d.get("kind")
                and d.get("metadata", {}).get("name")
                and d["metadata"].get("namespace")
            )
        ]
        assert [] == bad

    def test_collector_configs_are_structurally_sound(self) -> None:
        """The agent and gateway configs pass the same lint as the local collector's."""
        assert {"otel-agent": [], "otel-gateway": []} == {
            name: lint_collector(configmap(name), KNOWN) for name in ("otel-agent", "otel-gateway")
        }

    def test_jaeger_config_is_sound_and_not_in_memory(self) -> None:
        """Jaeger passes the lint and stores traces in a scalable store."""
        config = configmap("jaeger")
        assert [] == lint_collector(config, JAEGER_KNOWN)
        storage = config["extensions"]["jaeger_storage"]["backends"]
        traces = storage[config["extensions"]["jaeger_query"]["storage"]["traces"]]
        assert set(traces) <= {"elasticsearch", "opensearch", "cassandra"}

    def test_agents_route_by_trace_id_to_the_gateway_headless_service(self) -> None:
        """loadbalancing by traceID over the gateway pods (headless Service, OTLP gRPC port)."""
        exporter = configmap("otel-agent")["exporters"]["loadbalancing"]
        assert "traceID" == exporter["routing_key"]
        dns = exporter["resolver"]["dns"]
        name, namespace = dns["hostname"].split(".")[:2]
        service = by_kind("Service")[f"{namespace}/{name}"]
        assert "None" == str(service["spec"]["clusterIP"])
        gateway = configmap("otel-gateway")["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        assert dns["port"] == str(port(gateway)) == str(service["spec"]["ports"][0]["port"])
        assert (
            "loadbalancing"
            in configmap("otel-agent")["service"]["pipelines"]["traces"]["exporters"]
        )

    def test_gateway_tail_sampling_keeps_errored_and_slow_llm_traces(self) -> None:
        """Policies: every ERROR trace, every slow trace, slow LLM calls, cold loads, a baseline."""
        gateway = configmap("otel-gateway")
        assert "tail_sampling" in gateway["service"]["pipelines"]["traces"]["processors"]
        policies = {p["name"]: p for p in gateway["processors"]["tail_sampling"]["policies"]}
        by_type = {p["type"]: p for p in policies.values()}
        assert ["ERROR"] == by_type["status_code"]["status_code"]["status_codes"]
        assert by_type["latency"]["latency"]["threshold_ms"] > 0
        llm = " ".join(by_type["ottl_condition"]["ottl_condition"]["span"])
        assert 'attributes["gen_ai.operation.name"]' in llm
        assert "ollama.cold_load" == by_type["boolean_attribute"]["boolean_attribute"]["key"]
        assert 0 < by_type["probabilistic"]["probabilistic"]["sampling_percentage"] < 100

    def test_gateway_exports_to_the_jaeger_service(self) -> None:
        """The gateway's exporter targets the jaeger-collector Service's OTLP port."""
        endpoint = configmap("otel-gateway")["exporters"]["otlp_grpc/jaeger"]["endpoint"]
        name, namespace = host(endpoint).split(".")[:2]
        service = by_kind("Service")[f"{namespace}/{name}"]
        jaeger_grpc = configmap("jaeger")["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        assert port(endpoint) == service["spec"]["ports"][0]["port"] == port(jaeger_grpc)

    def test_prometheus_scrapes_the_agents_and_remote_writes_exemplars(self) -> None:
        """Per-pod scrape of the agents' port, remote_write with exemplars to long-term storage."""
        config = load(PRODUCTION / "prometheus.yml")
        agents = {j["job_name"]: j for j in config["scrape_configs"]}["otel-agents"]
        [keep] = [r for r in agents["relabel_configs"] if r.get("action") == "keep"]
        ports = {
            p["name"]: p["containerPort"]
            for d in by_kind("Deployment").values()
            for c in d["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        agent_prom = configmap("otel-agent")["exporters"]["prometheus"]["endpoint"]
        assert ports[keep["regex"]] == port(agent_prom)
        [remote] = config["remote_write"]
        assert remote["send_exemplars"] is True and remote["url"].startswith("http")

    def test_deployments_are_wired(self) -> None:
        """Selectors match labels; config maps exist where --config reads; images pinned."""
        maps = by_kind("ConfigMap")
        for key, deployment in by_kind("Deployment").items():
            namespace = key.split("/")[0]
            spec = deployment["spec"]
            assert (
                spec["selector"]["matchLabels"].items()
                <= spec["template"]["metadata"]["labels"].items()
            )
            volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
            for volume in volumes.values():
                if "configMap" in volume:
                    assert f"{namespace}/{volume['configMap']['name']}" in maps
            for container in spec["template"]["spec"]["containers"]:
                image, _, tag = container["image"].rpartition(":")
                assert image and tag not in ("", "latest"), container["image"]
                for arg in container.get("args", []):
                    if arg.startswith("--config="):
                        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                        directory = str(Path(arg.split("=", 1)[1]).parent)
                        assert "configMap" in volumes[mounts[directory]]


# -- option types, every shipped collector config ---------------------------------------------


def shipped_collector_configs() -> dict[str, dict[str, Any]]:
    """Every collector-style config we ship: local stack and production manifests."""
    return {
        "deploy/collector.yaml": COLLECTOR,
        "deploy/jaeger.yaml": JAEGER,
        **{f"deploy/production: {name}": configmap(name) for name in PRODUCTION_CONFIGS},
    }


class TestConfigTypes:
    @pytest.mark.parametrize("name", sorted(shipped_collector_configs()))
    def test_every_option_has_its_go_type(self, name: str) -> None:
        """Each option's YAML type is one its Go field decodes without weak typing."""
        assert [] == type_problems(shipped_collector_configs()[name])

    def test_a_port_as_an_integer_is_caught(self) -> None:
        """The loadbalancing resolver's port is a Go string: `port: 4317` would crash-loop."""
        agent = configmap("otel-agent")
        agent["exporters"]["loadbalancing"]["resolver"]["dns"]["port"] = 4317
        assert [
            "exporters.loadbalancing.resolver.dns.port: expected string, got 4317"
        ] == type_problems(agent)

    def test_durations_untyped_and_deprecated_options_are_caught(self) -> None:
        """A bare number for a duration, an option not in the table, a deprecated option."""
        agent = configmap("otel-agent")
        agent["processors"]["batch"]["timeout"] = 1
        agent["processors"]["batch"]["send_batch_size"] = "8192"
        agent["exporters"]["prometheus"]["add_metric_suffixes"] = True
        jaeger = configmap("jaeger")
        spans = jaeger["extensions"]["jaeger_storage"]["backends"]["opensearch"]["opensearch"][
            "indices"
        ]["spans"]
        spans["date_layout"] = "2006-01-02"
        assert [
            "processors.batch.send_batch_size: expected int, got '8192'",
            "processors.batch.timeout: expected duration, got 1",
            "exporters.prometheus.add_metric_suffixes: untyped option (add it to FIELD_TYPES)",
        ] == type_problems(agent)
        assert [
            "extensions.jaeger_storage.backends.opensearch.opensearch.indices.spans.date_layout:"
            " deprecated, use indices.<index>.rotation.periodic.date_layout"
        ] == type_problems(jaeger)
