"""The Prometheus recording and alerting rules (``deploy/rules/``), through a real promtool.

``promtool check rules`` on every rule file; ``promtool test rules`` on every unit test in
``tests/data/rules/``, which prove that each alert fires on the series it should and stays
silent on the others; every alert has such a test; the rules and the test data use only
the metric and label names otel_llm exports; the rule files are wired into both
Prometheus configs and mounted by the compose file. (tests/test_dashboards.py loads the
rules into a real Prometheus scraping real calls and checks every recorded series.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm import instruments, prometheus, semconv
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
UNIT_TESTS = sorted((ROOT / "tests" / "data" / "rules").glob("*.test.yml"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]
    ]


ALERTS = {r["alert"]: r for r in rules() if "alert" in r}
RECORDED = {r["record"]: r for r in rules() if "record" in r}

# What otel_llm exports: every instrument's Prometheus name (histograms with their series)
# and the labels a rule may select on (docs/metrics.md).
EXPORTED = {
    prometheus.metric_name(spec.name, spec.unit, spec.kind) + suffix
    for spec in instruments.ALL
    for suffix in ("", "_bucket", "_sum", "_count", "_total")
}
LABELS = {
    prometheus.label_name(key)
    for key in (
        *prometheus.DEFAULT_RESOURCE_LABELS,
        semconv.REQUEST_MODEL,
        semconv.SERVER_ADDRESS,
        semconv.SERVER_PORT,
        semconv.ERROR_TYPE,
        instruments.TOKEN_TYPE,
    )
} | {"le"}
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "avg_over_time", "and", "or",
    "unless", "bool", "on", "ignoring", "without",
}  # fmt: skip
_SELECTOR = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")


def names_in(expr: str) -> set[str]:
    """The metric names an expression reads (words that are not functions or keywords)."""
    bare = _RANGE.sub("", _SELECTOR.sub("", expr))
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    grouped = {
        w for group in re.findall(r"by\s*\(([^)]*)\)", bare) for w in re.findall(r"\w+", group)
    }
    return words - PROMQL_WORDS - grouped


def labels_in(expr: str) -> set[str]:
    """The label names an expression groups by or matches on."""
    grouped = {w for g in re.findall(r"\bby\s*\(([^)]*)\)", expr) for w in re.findall(r"\w+", g)}
    matched = {m for s in _SELECTOR.findall(expr) for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", s)}
    return grouped | matched


def _recorded_source(expr: str) -> str:
    """The expressions of the recorded series an expression reads, concatenated."""
    return " ".join(RECORDED[n]["expr"] for n in names_in(expr) if n in RECORDED)


def promtool() -> str:
    return require("promtool", "prometheus")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def alert_tests() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """``(file, test group, alert_rule_test)`` for every alert case of every unit test."""
    return [
        (path, group, case)
        for path in UNIT_TESTS
        for group in load(path)["tests"]
        for case in group.get("alert_rule_test", [])
    ]


def series_labels(series: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', series))


class TestStatic:
    def test_there_are_rules_and_unit_tests(self) -> None:
        """Recording rules, the five alerts, and unit tests for them."""
        assert RECORDED and UNIT_TESTS
        assert {
            "LLMErrorRatioHigh",
            "LLMTimeToFirstTokenRegression",
            "OllamaColdLoadStorm",
            "LLMNoSuccessfulCalls",
            "OllamaPromptsTruncated",
        } == set(ALERTS)

    def test_rules_read_only_exported_or_recorded_series(self) -> None:
        """Every metric a rule reads is an otel_llm series or a series recorded here."""
        unknown = {
            name: sorted(names_in(rule["expr"]) - EXPORTED - set(RECORDED))
            for name, rule in {**RECORDED, **ALERTS}.items()
        }
        assert {name: [] for name in unknown} == unknown
        assert names_in('sum by (le) (rate(a_bucket{x="1"}[5m])) / b') == {"a_bucket", "b"}

    def test_rules_use_only_exported_labels(self) -> None:
        """Grouping and matching labels are ones otel_llm puts on its series."""
        unknown = {
            name: sorted(labels_in(rule["expr"]) - LABELS)
            for name, rule in {**RECORDED, **ALERTS}.items()
        }
        assert {name: [] for name in unknown} == unknown

    def test_unit_test_inputs_are_exported_series(self) -> None:
        """The unit tests feed otel_llm's series names and labels, not invented ones."""
        bad = []
        for path in UNIT_TESTS:
            for group in load(path)["tests"]:
                for series in group["input_series"]:
                    name = series["series"].split("{", 1)[0]
                    extra = set(series_labels(series["series"])) - LABELS
                    if name not in EXPORTED or extra:
                        bad.append(f"{path.name}: {series['series']}")
        assert [] == bad

    def test_recorded_names_follow_the_convention(self) -> None:
        """level:metric:operations; per-model series keep the labels dashboards select on."""
        for name, rule in RECORDED.items():
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name
            if name.startswith("service_model"):
                assert {"service_name", "deployment_environment_name", "gen_ai_request_model"} <= (
                    labels_in(rule["expr"]) | labels_in(_recorded_source(rule["expr"]))
                ), name

    def test_every_alert_fires_in_a_test_and_stays_silent_in_one(self) -> None:
        """Each alert has a case where it fires, and input series it must stay silent on.

        Silent means: a case expecting no alert, or input series of the firing case that
        no expected alert's labels cover (a healthy model, an idle one, another server).
        """
        fires: set[str] = set()
        silent: set[str] = set()
        for _, group, case in alert_tests():
            name = case["alertname"]
            expected = [
                {k: v for k, v in a["exp_labels"].items() if k != "severity"}
                for a in case.get("exp_alerts") or []
            ]
            if not expected:
                silent.add(name)
                continue
            fires.add(name)
            for series in group["input_series"]:
                labels = series_labels(series["series"])
                if not any(e.items() <= labels.items() for e in expected):
                    silent.add(name)
        assert (set(ALERTS), set(ALERTS)) == (fires, silent)


@pytest.mark.real_component
class TestPromtool:
    def test_check_rules(self) -> None:
        """promtool (Debian's 2.42) accepts every rule file."""
        result = run("check", "rules", *RULE_FILES)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert len(RULE_FILES) == result.stdout.count("SUCCESS")

    @pytest.mark.parametrize("path", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
    def test_unit_tests_pass(self, path: Path) -> None:
        """`promtool test rules`: every alert and recorded value as the test expects."""
        result = run("test", "rules", path)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_unit_tests_fail_on_a_wrong_threshold(self, tmp_path: Path) -> None:
        """The unit tests have teeth: a threshold raised from 10 % to 50 % fails them."""
        shutil.copytree(ROOT / "deploy" / "rules", tmp_path / "deploy" / "rules")
        shutil.copytree(ROOT / "tests" / "data" / "rules", tmp_path / "tests" / "data" / "rules")
        alerts = tmp_path / "deploy" / "rules" / "otel-llm.alerts.yml"
        text = alerts.read_text(encoding="utf-8")
        assert "ratio_rate5m > 0.1\n" in text
        alerts.write_text(text.replace("ratio_rate5m > 0.1\n", "ratio_rate5m > 0.5\n"))
        result = run(
            "test", "rules", tmp_path / "tests" / "data" / "rules" / "error-ratio.test.yml"
        )
        assert 0 != result.returncode
        assert "LLMErrorRatioHigh" in result.stdout + result.stderr


class TestWiring:
    @pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.test.yml"])
    def test_local_configs_load_the_rule_files(self, config: str) -> None:
        """rule_files, relative to the config, match exactly deploy/rules/*.yml."""
        path = ROOT / "deploy" / config
        patterns = load(path)["rule_files"]
        assert set(RULE_FILES) == {p for pattern in patterns for p in path.parent.glob(pattern)}

    def test_production_config_loads_the_rule_files(self) -> None:
        """The production config reads every rule file from its mounted rules directory."""
        [pattern] = load(ROOT / "deploy" / "production" / "prometheus.yml")["rule_files"]
        assert Path(pattern).is_absolute()
        assert set(RULE_FILES) == set(RULES.glob(Path(pattern).name))

    def test_compose_mounts_the_rules_beside_the_config(self) -> None:
        """The compose Prometheus finds deploy/rules where its config's rule_files point."""
        compose = load(ROOT / "docker-compose.observability.yml")
        volumes = {
            str(v).split(":")[0]: str(v).split(":")[1]
            for v in compose["services"]["prometheus"]["volumes"]
        }
        config_dir = Path(volumes["./deploy/prometheus.yml"]).parent
        [pattern] = load(ROOT / "deploy" / "prometheus.yml")["rule_files"]
        assert Path(volumes["./deploy/rules"]) == (config_dir / pattern).parent
