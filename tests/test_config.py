"""``_config``: one declaration of the options, unknown keywords refused, env resolved once."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_llm
from otel_llm import environment_variables as env
from otel_llm._config import (
    OPTION_NAMES,
    MetricsSettings,
    Options,
    Settings,
    parse_ollama_host,
    resolve,
    resolve_metrics,
)
from otel_llm.instrumentor import LLMInstrumentor
from otel_llm.testing.mock_ollama import MockOllama
from tests.conftest import Spans

_ALL_VARIABLES = [
    value
    for name, value in vars(env).items()
    if name.isupper() and isinstance(value, str) and name == value
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every variable we read starts unset (exporters: none), so each test sets what it means."""
    for name in _ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env.OTEL_TRACES_EXPORTER, "none")
    monkeypatch.setenv(env.OTEL_METRICS_EXPORTER, "none")
    yield


class TestOptionNames:
    def test_every_documented_keyword_is_accepted(self) -> None:
        """The keywords instrument() has always taken, and no others."""
        expected = {
            "tracer_provider",
            "meter_provider",
            "capture_content",
            "content_max_length",
            "redact",
            "legacy_attributes",
            "ollama_hosts",
            "providers",
            "default_provider",
            "propagate",
            "http_spans",
            "traces_exporter",
            "baggage_keys",
            "metric_tags",
            "max_tag_values",
            "ollama_context_lookup",
            "sdk_spans",
            "metrics",
            "metrics_exporter",
            "latest_metrics",
            "server_metrics",
            "max_models",
            "prometheus_port",
            "prometheus_host",
            "prometheus_resource_labels",
            "log_events",
            "ollama_residency",
            "sinks",
        }
        assert expected == set(OPTION_NAMES)

    def test_every_keyword_is_documented(self) -> None:
        """Options' docstring names every keyword (the one place they are described)."""
        doc = Options.__doc__ or ""
        assert [] == sorted(name for name in OPTION_NAMES if f"``{name}``" not in doc)

    def test_options_keep_what_was_given(self) -> None:
        """Options.of stores each keyword under its own name."""
        options = Options.of(capture_content=True, max_models=7, prometheus_port=0)
        assert (True, 7, 0) == (
            options.capture_content,
            options.max_models,
            options.prometheus_port,
        )


class TestUnknownKeywords:
    def test_typo_names_the_closest_option(self, collected: Spans) -> None:
        """instrument(prometheus_prot=...) raises TypeError naming prometheus_port."""
        with pytest.raises(TypeError) as info:
            otel_llm.instrument(prometheus_prot=9464)
        assert "'prometheus_prot'" in str(info.value)
        assert "did you mean 'prometheus_port'?" in str(info.value)
        assert otel_llm.is_instrumented() is False

    def test_typo_raises_even_when_instrumented(
        self, collected: Spans, tracer_provider: TracerProvider
    ) -> None:
        """A second instrument() call is a no-op, but a typo in it still fails."""
        otel_llm.instrument(tracer_provider=tracer_provider, metrics=False)
        with pytest.raises(TypeError, match="capture_content"):
            otel_llm.instrument(capture_contents=True)

    def test_instrumentor_refuses_too(self, collected: Spans) -> None:
        """LLMInstrumentor().instrument() (opentelemetry-instrument's door) checks names too."""
        with pytest.raises(TypeError, match="did you mean 'log_events'"):
            LLMInstrumentor().instrument(log_event=True)
        assert otel_llm.is_instrumented() is False

    def test_no_close_match(self) -> None:
        """A name like no option gets the plain Python message, no guess."""
        with pytest.raises(TypeError) as info:
            Options.of(zzz=1)
        assert "instrument() got an unexpected keyword argument 'zzz'" == str(info.value)


class TestResolve:
    def test_sdk_span_policy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """sdk_spans: keyword over OTEL_LLM_SDK_SPANS over ``nest``; an unknown value is nest."""
        assert resolve().nest_in_sdk_spans
        monkeypatch.setenv(env.OTEL_LLM_SDK_SPANS, "ignore")
        assert not resolve().nest_in_sdk_spans
        assert resolve(Options(sdk_spans="nest")).nest_in_sdk_spans
        monkeypatch.setenv(env.OTEL_LLM_SDK_SPANS, "bogus")
        assert resolve().nest_in_sdk_spans

    def test_defaults(self) -> None:
        """No keyword, no variable: the documented defaults."""
        settings = resolve()
        assert Settings(baggage_keys=settings.baggage_keys) == settings

    def test_environment_over_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each variable sets its option."""
        monkeypatch.setenv(env.OTEL_LLM_CAPTURE_CONTENT, "true")
        monkeypatch.setenv(env.OTEL_LLM_CONTENT_MAX_LENGTH, "100")
        monkeypatch.setenv(env.OTEL_LLM_LEGACY_ATTRIBUTES, "yes")
        monkeypatch.setenv(env.OTEL_LLM_PROPAGATE, "false")
        monkeypatch.setenv(env.OTEL_LLM_HTTP_SPANS, "1")
        monkeypatch.setenv(env.OTEL_LLM_PROVIDERS, "vllm.local:8000=vllm, bad, =x")
        monkeypatch.setenv(env.OTEL_LLM_BAGGAGE_KEYS, "tenant, team")
        settings = resolve()
        assert (True, 100, True, False, True) == (
            settings.capture_content,
            settings.content_max_length,
            settings.legacy_attributes,
            settings.propagate,
            settings.http_spans,
        )
        assert {"vllm.local:8000": "vllm"} == settings.providers
        assert {"tenant", "team"} <= settings.baggage_keys

    def test_keywords_over_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A keyword wins over its variable, even when it says False."""
        monkeypatch.setenv(env.OTEL_LLM_CAPTURE_CONTENT, "true")
        monkeypatch.setenv(env.OTEL_LLM_CONTENT_MAX_LENGTH, "100")
        monkeypatch.setenv(env.OTEL_LLM_PROPAGATE, "false")
        monkeypatch.setenv(env.OTEL_LLM_PROVIDERS, "h=a")
        settings = resolve(
            Options(
                capture_content=False, content_max_length=50, propagate=True, providers={"H": "b"}
            )
        )
        assert (False, 50, True, {"h": "b"}) == (
            settings.capture_content,
            settings.content_max_length,
            settings.propagate,
            dict(settings.providers),
        )

    def test_standard_capture_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The GenAI standard variable's values; ours overrides it."""
        monkeypatch.setenv(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "SPAN_ONLY")
        assert resolve().capture_content is True
        monkeypatch.setenv(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "NO_CONTENT")
        assert resolve().capture_content is False
        monkeypatch.setenv(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "true")
        monkeypatch.setenv(env.OTEL_LLM_CAPTURE_CONTENT, "false")
        assert resolve().capture_content is False

    def test_bad_length_falls_back_and_says_so(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A non-integer length is logged and the default used; tiny lengths become 16."""
        monkeypatch.setenv(env.OTEL_LLM_CONTENT_MAX_LENGTH, "lots")
        with caplog.at_level(logging.ERROR, logger="otel_llm"):
            assert 4096 == resolve().content_max_length
        assert env.OTEL_LLM_CONTENT_MAX_LENGTH in caplog.text
        assert 16 == resolve(Options(content_max_length=3)).content_max_length


class TestResolveMetrics:
    def test_defaults(self) -> None:
        """Metrics on, classic set, server metrics on, 100 models, no endpoint, no events."""
        assert MetricsSettings() == resolve_metrics()

    def test_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each metrics variable sets its switch."""
        monkeypatch.setenv(env.OTEL_LLM_METRICS, "false")
        monkeypatch.setenv(env.OTEL_LLM_LATEST_METRICS, "true")
        monkeypatch.setenv(env.OTEL_LLM_SERVER_METRICS, "false")
        monkeypatch.setenv(env.OTEL_LLM_MAX_MODELS, "5")
        monkeypatch.setenv(env.OTEL_LLM_LOG_EVENTS, "on")
        monkeypatch.setenv(env.OTEL_LLM_OLLAMA_RESIDENCY, "true")
        assert (
            MetricsSettings(
                enabled=False,
                latest=True,
                server=False,
                max_models=5,
                log_events=True,
                residency=True,
            )
            == resolve_metrics()
        )

    def test_keywords_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Keywords beat the variables; max_models is at least 1."""
        monkeypatch.setenv(env.OTEL_LLM_METRICS, "false")
        monkeypatch.setenv(env.OTEL_LLM_MAX_MODELS, "5")
        resolved = resolve_metrics(Options(metrics=True, max_models=0, ollama_residency=["h:1"]))
        assert (True, 1, ["h:1"]) == (resolved.enabled, resolved.max_models, resolved.residency)

    def test_prometheus_port_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """prometheus_port without OTEL_METRICS_EXPORTER: endpoint on, no OTLP exporter."""
        monkeypatch.delenv(env.OTEL_METRICS_EXPORTER)
        resolved = resolve_metrics(Options(prometheus_port=0))
        assert ("prometheus", ("127.0.0.1", 0)) == (resolved.exporter, resolved.prometheus)

    def test_prometheus_port_keeps_the_named_exporters(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With OTEL_METRICS_EXPORTER set, the provider we build follows it."""
        resolved = resolve_metrics(Options(prometheus_port=9999, prometheus_host="0.0.0.0"))
        assert (None, ("0.0.0.0", 9999)) == (resolved.exporter, resolved.prometheus)

    def test_prometheus_from_environment(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """OTEL_METRICS_EXPORTER=prometheus: host and port variables, 9464 if unset or bad."""
        monkeypatch.setenv(env.OTEL_METRICS_EXPORTER, "otlp, prometheus")
        assert ("127.0.0.1", 9464) == resolve_metrics().prometheus
        monkeypatch.setenv(env.OTEL_EXPORTER_PROMETHEUS_HOST, "::1")
        monkeypatch.setenv(env.OTEL_EXPORTER_PROMETHEUS_PORT, "9100")
        assert ("::1", 9100) == resolve_metrics().prometheus
        monkeypatch.setenv(env.OTEL_EXPORTER_PROMETHEUS_PORT, "http")
        with caplog.at_level(logging.ERROR, logger="otel_llm"):
            assert ("::1", 9464) == resolve_metrics().prometheus
        assert env.OTEL_EXPORTER_PROMETHEUS_PORT in caplog.text

    def test_no_prometheus_unless_asked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A port variable alone starts nothing: the exporter list decides."""
        monkeypatch.setenv(env.OTEL_EXPORTER_PROMETHEUS_PORT, "9100")
        assert None is resolve_metrics().prometheus
        assert None is resolve_metrics(Options(metrics_exporter="console")).prometheus


class TestParseOllamaHost:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("gpu-box", "gpu-box:11434"),
            ("gpu-box:8000", "gpu-box:8000"),
            ("0.0.0.0", "127.0.0.1:11434"),
            (":9999", "127.0.0.1:9999"),
            ("http://gpu-box", "gpu-box:80"),
            ("https://ollama.example.com", "ollama.example.com:443"),
            ("http://gpu-box:8000/v1", "gpu-box:8000"),
            ("HTTP://GPU-BOX:8000/", "gpu-box:8000"),
            ("[::1]:9000", "::1:9000"),
            ("  ", None),
            ("host:notaport", None),
        ],
    )
    def test_forms(self, raw: str, expected: str | None) -> None:
        """Ollama's own reading: no scheme → 11434, http → 80, https → 443, path ignored."""
        assert expected == parse_ollama_host(raw)


class TestProviderFor:
    def test_implied_provider(self) -> None:
        """An endpoint's own provider (LM Studio's /api/v0) wins over host rules."""
        settings = resolve(Options(ollama_hosts=["box:1234"]))
        assert "lm_studio" == settings.provider_for("box", 1234, "lm_studio")
        assert "ollama" == settings.provider_for("box", 1234)

    def test_explicit_providers_win_over_everything(self) -> None:
        """providers= relabels even an API that names its provider."""
        settings = resolve(Options(providers={"proxy.local:80": "gateway"}))
        assert "gateway" == settings.provider_for("proxy.local", 80, "ollama")

    def test_known_hosts(self) -> None:
        """Well-known hosts, Azure, then default_provider."""
        settings = resolve(Options(default_provider="vllm"))
        assert ["groq", "azure.ai.openai", "vllm"] == [
            settings.provider_for("api.groq.com", 443),
            settings.provider_for("me.openai.azure.com", 443),
            settings.provider_for("10.1.2.3", 8000),
        ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (env.OLLAMA_HOST, "127.0.0.1:{port}"),
        (env.OLLAMA_BASE_URL, "http://localhost:{port}/v1"),
        (env.OLLAMA_API_BASE, "http://127.0.0.1:{port}"),
    ],
)
class TestOllamaHostVariables:
    """Servers users already named for pydantic-ai, LiteLLM or Ollama are labelled ollama."""

    def test_resolved_once(
        self, variable: str, value: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The variable's server (both loopback spellings) joins the Ollama hosts."""
        monkeypatch.setenv(variable, value.format(port=4321))
        assert {"127.0.0.1:4321", "localhost:4321"} <= resolve().ollama_hosts

    def test_v1_embeddings_labelled_ollama(
        self,
        variable: str,
        value: str,
        monkeypatch: pytest.MonkeyPatch,
        collected: Spans,
        tracer_provider: TracerProvider,
    ) -> None:
        """/v1/embeddings (no fingerprint in the reply) to that server: provider ollama."""
        with MockOllama() as mock:
            otel_llm.instrument(tracer_provider=tracer_provider, metrics=False)
            body = {"model": "all-minilm", "input": "hello"}
            httpx.post(f"{mock.url}/v1/embeddings", json=body).raise_for_status()
            unnamed = collected.one().attributes["gen_ai.provider.name"]
            otel_llm.uninstrument()
            collected.clear()

            monkeypatch.setenv(variable, value.format(port=mock.port))
            otel_llm.instrument(tracer_provider=tracer_provider, metrics=False)
            httpx.post(f"{mock.url}/v1/embeddings", json=body).raise_for_status()
            named = collected.one().attributes["gen_ai.provider.name"]
        assert ("openai", "ollama") == (unnamed, named)


_PACKAGE = Path(otel_llm.__file__).parent
_NOT_OURS = frozenset({"OPENAI_API_KEY"})
"""Other libraries' variables the testing plugin sets for them (a dummy key for openai)."""
_LITERAL_READ = re.compile(r"""(?:environ\.get|getenv|environ)\s*[(\[]\s*f?["']([^"']+)""")
"""A read such as ``os.environ.get("NAME")`` (``setdefault`` only sets a default)."""


class TestEnvironmentVariables:
    def test_each_is_a_documented_constant(self) -> None:
        """environment_variables.py: NAME = "NAME", each followed by its docstring."""
        tree = ast.parse((_PACKAGE / "environment_variables.py").read_text(encoding="utf-8"))
        body = tree.body
        undocumented = []
        for i, node in enumerate(body):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                assert isinstance(target, ast.Name)
                assert target.id == getattr(env, target.id)
                following = body[i + 1] if i + 1 < len(body) else None
                if not (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    undocumented.append(target.id)
        assert [] == undocumented
        assert len(_ALL_VARIABLES) > 20

    def test_read_through_the_constants(self) -> None:
        """No module reads a variable by a string literal: each has one home."""
        literal = []
        for path in sorted(_PACKAGE.rglob("*.py")):
            if path.name == "environment_variables.py":
                continue
            for name in _LITERAL_READ.findall(path.read_text(encoding="utf-8")):
                if name not in _NOT_OURS:
                    literal.append(f"{path.relative_to(_PACKAGE)}: {name}")
        assert [] == literal

    def test_each_is_in_the_docs(self) -> None:
        """Every variable appears in the README or docs/ (users look there, not in code)."""
        root = _PACKAGE.parent
        text = (root / "README.md").read_text(encoding="utf-8") + "".join(
            p.read_text(encoding="utf-8") for p in sorted((root / "docs").glob("*.md"))
        )
        assert [] == [name for name in _ALL_VARIABLES if name not in text]

    def test_declared_nowhere_else(self) -> None:
        """No other module defines a variable-name constant (the proxy's flags excepted)."""
        pattern = re.compile(r"""^\w+\s*(?::\s*\w+)?\s*=\s*["'](?:OTEL|OLLAMA)_""", re.MULTILINE)
        elsewhere = [
            str(path.relative_to(_PACKAGE))
            for path in sorted(_PACKAGE.rglob("*.py"))
            if path.name != "environment_variables.py"
            and path.parent.name != "proxy"
            and pattern.search(path.read_text(encoding="utf-8"))
        ]
        assert [] == elsewhere
