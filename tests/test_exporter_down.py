"""A missing, hanging or failing collector costs the app one warning and a short flush.

Real loopback collectors: a closed port, a socket that accepts and never answers, an
HTTP server answering 503 (or 200). Exit-time behaviour runs in subprocesses. No test
asserts a duration; the subprocess timeouts are hang guards only.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_llm import _exporters, instruments
from otel_llm._exporters import COLLECTOR_DOWN, EXPORT_FAILED
from otel_llm.environment_variables import OTEL_LLM_EXPORT_FLUSH_TIMEOUT

HANG_GUARD_S = 60


# -- loopback collectors ---------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hanging:
    """Accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._sock.close()
        for conn in self.accepted:
            conn.close()


class Answering:
    """An OTLP/HTTP collector that answers every POST with ``status`` (settable)."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests += 1
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging()
    yield server
    server.close()


@pytest.fixture
def unavailable() -> Iterator[Answering]:
    server = Answering(503)
    yield server
    server.close()


@pytest.fixture
def healthy() -> Iterator[Answering]:
    server = Answering(200)
    yield server
    server.close()


def url(port: int, path: str = "/v1/traces") -> str:
    return f"http://127.0.0.1:{port}{path}"


def spans(n: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    out = []
    for i in range(n):
        span = tracer.start_span(f"span {i}")
        span.end()
        out.append(span)
    return out  # type: ignore[return-value]


def drops(signal: str, reason: str) -> int:
    return _exporters.dropped.get((signal, reason), 0)


def lost_since(failed: int, down: int) -> int:
    """Spans given up on since the two counts were read."""
    return drops("traces", EXPORT_FAILED) - failed + drops("traces", COLLECTOR_DOWN) - down


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- in process: the wrapped exporter ------------------------------------------------------
class TestFailFastSpanExporter:
    def test_refused_gives_up_after_first_attempt(self, caplog: pytest.LogCaptureFixture) -> None:
        """A closed port: one warning naming the fixes, no retry lines, the batch counted."""
        caplog.set_level(logging.DEBUG, logger="opentelemetry")
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(closed_port())))
        failed, down = drops("traces", EXPORT_FAILED), drops("traces", COLLECTOR_DOWN)
        try:
            first = exporter.export(spans(3))
            second = exporter.export(spans(4))
        finally:
            exporter.shutdown()
        assert (SpanExportResult.FAILURE, SpanExportResult.FAILURE) == (first, second)
        messages = warnings_from(caplog)
        assert 1 == len(messages), messages
        assert "connection refused" in messages[0]
        for fix in ("docker compose", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
            assert fix in messages[0]
        assert [] == [m for m in messages if "Transient error" in m]
        assert 3 == drops("traces", EXPORT_FAILED) - failed
        assert 4 == drops("traces", COLLECTOR_DOWN) - down

    def test_unavailable_is_not_retried_and_breaker_skips_the_network(
        self, unavailable: Answering, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 503: the batch is given up at once; the next one is dropped without a request."""
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(unavailable.port)))
        failed, down = drops("traces", EXPORT_FAILED), drops("traces", COLLECTOR_DOWN)
        try:
            first = exporter.export(spans(2))
            second = exporter.export(spans(3))
        finally:
            exporter.shutdown()
        assert SpanExportResult.FAILURE == first
        assert SpanExportResult.FAILURE == second
        assert 1 <= unavailable.requests
        assert 2 == drops("traces", EXPORT_FAILED) - failed
        assert 3 == drops("traces", COLLECTOR_DOWN) - down
        messages = warnings_from(caplog)
        assert 1 == len(messages), messages
        assert "Service Unavailable" in messages[0]

    def test_flush_probes_once_and_recovery_closes_the_breaker(
        self, unavailable: Answering, caplog: pytest.LogCaptureFixture
    ) -> None:
        """After an outage a flush sends one probe; a 200 ends the outage."""
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(unavailable.port)))
        processor = _exporters.FlushBoundedSpanProcessor(exporter, schedule_delay_millis=60_000)
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("test")
        try:
            tracer.start_span("down").end()
            assert provider.force_flush()
            failed = drops("traces", EXPORT_FAILED)
            unavailable.status = 200
            before = unavailable.requests
            tracer.start_span("back").end()
            assert provider.force_flush()
            probes = unavailable.requests - before
            assert SpanExportResult.SUCCESS == exporter.export(spans(1))
        finally:
            provider.shutdown()
        assert failed == drops("traces", EXPORT_FAILED)
        assert 1 <= probes
        assert 1 == len(warnings_from(caplog))

    def test_healthy_collector_gets_everything(
        self, healthy: Answering, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A collector answering 200: every batch goes out, nothing dropped, nothing logged."""
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(healthy.port)))
        before = dict(_exporters.dropped)
        try:
            results = [exporter.export(spans(5)) for _ in range(3)]
        finally:
            exporter.shutdown()
        assert [SpanExportResult.SUCCESS] * 3 == results
        assert 3 == healthy.requests
        assert before == _exporters.dropped
        assert [] == warnings_from(caplog)

    def test_hanging_collector_costs_the_flush_timeout_at_shutdown(
        self, hanging: Hanging, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A collector that never answers: shutdown gives up after the flush timeout."""
        monkeypatch.setenv(OTEL_LLM_EXPORT_FLUSH_TIMEOUT, "300")
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(hanging.port)))
        provider = TracerProvider()
        provider.add_span_processor(
            _exporters.FlushBoundedSpanProcessor(exporter, schedule_delay_millis=60_000)
        )
        tracer = provider.get_tracer("test")
        for i in range(600):  # more than one batch: the second is dropped, not awaited
            tracer.start_span(f"s{i}").end()
        failed, down = drops("traces", EXPORT_FAILED), drops("traces", COLLECTOR_DOWN)
        done = threading.Thread(target=provider.shutdown, daemon=True)
        done.start()
        done.join(HANG_GUARD_S)
        assert not done.is_alive()
        assert 1 <= len(hanging.accepted)
        assert 600 == lost_since(failed, down)
        messages = warnings_from(caplog)
        assert 1 == len(messages), messages
        assert "no answer within" in messages[0]

    def test_hanging_collector_outside_a_flush_waits_the_exporters_own_timeout(
        self, hanging: Hanging, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Outside a flush the exporter's own timeout applies; the warning names it."""
        inner = OTLPSpanExporter(endpoint=url(hanging.port), timeout=0.5)
        exporter = _exporters.FailFastSpanExporter(inner)
        try:
            result = exporter.export(spans(1))
        finally:
            exporter.shutdown()
        assert SpanExportResult.FAILURE == result
        messages = warnings_from(caplog)
        assert 1 == len(messages), messages
        assert "timed out" in messages[0].lower() or "Timeout" in messages[0]

    def test_outage_holds_no_spans(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every span of a burst is exported or counted; the queue is empty after a flush."""
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(closed_port())))
        processor = _exporters.FlushBoundedSpanProcessor(
            exporter, max_queue_size=10_000, schedule_delay_millis=60_000
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("test")
        failed, down = drops("traces", EXPORT_FAILED), drops("traces", COLLECTOR_DOWN)
        try:
            for i in range(5000):
                tracer.start_span(f"s{i}").end()
            assert provider.force_flush()
            queued = len(processor._batch_processor._queue)
        finally:
            provider.shutdown()
        assert 0 == queued
        assert 5000 == lost_since(failed, down)

    def test_grpc_refused_gives_up_after_first_attempt(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The gRPC exporter too: UNAVAILABLE once, then no retries and one warning."""
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        inner = GrpcSpanExporter(endpoint=f"127.0.0.1:{closed_port()}", insecure=True)
        exporter = _exporters.FailFastSpanExporter(inner)
        failed = drops("traces", EXPORT_FAILED)
        try:
            result = exporter.export(spans(2))
        finally:
            exporter.shutdown()
        assert SpanExportResult.FAILURE == result
        messages = warnings_from(caplog)
        assert 1 == len(messages), messages
        assert "connection refused" in messages[0] or "UNAVAILABLE" in messages[0]
        assert 2 == drops("traces", EXPORT_FAILED) - failed

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
    def test_forked_child_starts_with_a_closed_breaker(
        self, hanging: Hanging, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A child forked mid-outage does not inherit its parent's stuck exports."""
        monkeypatch.setenv(OTEL_LLM_EXPORT_FLUSH_TIMEOUT, "50")
        exporter = _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(hanging.port)))
        down = drops("traces", COLLECTOR_DOWN)
        for _ in range(3):  # each flush probes: two abandoned and still running, then no more
            exporter.begin_flush()
            assert SpanExportResult.FAILURE == exporter.export(spans(1))
            exporter.end_flush()
        assert 1 == drops("traces", COLLECTOR_DOWN) - down
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            os._exit(0 if exporter._breaker.admit() else 1)
        _, status = os.waitpid(pid, 0)
        exporter.shutdown()
        assert 0 == os.waitstatus_to_exitcode(status)

    def test_app_built_exporters_keep_their_own_logs(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Exporters the app built (not wrapped) still log their retries as before."""
        _exporters.FailFastSpanExporter(OTLPSpanExporter(endpoint=url(closed_port())))
        theirs = OTLPSpanExporter(endpoint=url(closed_port()), timeout=1.5)
        try:
            assert SpanExportResult.FAILURE == theirs.export(spans(1))
        finally:
            theirs.shutdown()  # type: ignore[no-untyped-call]
        assert any("Transient error" in m for m in warnings_from(caplog))


class TestFailFastMetricExporter:
    def test_points_dropped_and_counted(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failed metric export counts its data points, on the otel_llm counters too."""
        port = closed_port()
        reader = _exporters.metric_reader(OTLPMetricExporter(endpoint=url(port, "/v1/metrics")))
        provider = MeterProvider(metric_readers=[reader])
        counts = InMemoryMetricReader()
        observer = MeterProvider(metric_readers=[counts])
        _exporters.observe_drops(observer)
        failed = drops("metrics", EXPORT_FAILED)
        try:
            counter = provider.get_meter("test").create_counter("things")
            counter.add(1, {"k": "a"})
            counter.add(1, {"k": "b"})
            provider.force_flush()
            assert 2 == drops("metrics", EXPORT_FAILED) - failed
        finally:
            provider.shutdown()
        data = counts.get_metrics_data()
        seen = {
            (metric.name, point.attributes["error.type"]): point.value  # type: ignore[index,union-attr]
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for metric in sm.metrics
            for point in metric.data.data_points
        }
        name = instruments.EXPORTER_POINTS_DROPPED.name
        assert drops("metrics", EXPORT_FAILED) == seen[(name, EXPORT_FAILED)]
        observer.shutdown()
        assert 1 == len(warnings_from(caplog))


# -- subprocesses: what a user's script sees at exit ----------------------------------------
SCRIPT = textwrap.dedent(
    """
    import atexit, json, sys
    from opentelemetry import trace
    from otel_llm import _exporters
    from otel_llm.testing.mock_ollama import MockOllama
    import ollama, otel_llm

    # Registered first, so it runs last: after the providers' own exit flush.
    atexit.register(lambda: print(json.dumps(
        {f"{s}/{r}": n for (s, r), n in _exporters.dropped.items()}), flush=True))
    mock = MockOllama().start()
    otel_llm.instrument(**json.loads(sys.argv[1]))
    messages = [{"role": "user", "content": "hi"}]
    ollama.Client(host=mock.url).chat(model="llama3.2", messages=messages)
    tracer = trace.get_tracer("script")
    for i in range(int(sys.argv[2])):
        tracer.start_span(f"queued {i}").end()
    if len(sys.argv) > 3:  # scrape our own Prometheus endpoint after a flush
        import urllib.request
        trace.get_tracer_provider().force_flush()
        body = urllib.request.urlopen(sys.argv[3], timeout=10).read().decode()
        print(json.dumps([line for line in body.splitlines() if "otel_llm_exporter" in line]))
    """
)


def run_script(
    endpoint: str, queued: int = 0, env: dict[str, str] | None = None, **options: object
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") or k == "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"
    }
    environ.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **(env or {})})
    args = [sys.executable, "-c", SCRIPT, json.dumps(options), str(queued)]
    if "prometheus_port" in options:
        args.append(f"http://127.0.0.1:{options['prometheus_port']}/metrics")
    return subprocess.run(
        args, env=environ, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )


def counted(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    last: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


class TestScriptExit:
    def test_no_collector_one_warning_no_retries(self) -> None:
        """A one-call script, 3,000 spans queued, nothing on the port: one line, all counted."""
        result = run_script(
            f"http://127.0.0.1:{closed_port()}",
            queued=3000,
            env={"OTEL_BSP_MAX_QUEUE_SIZE": "4096"},  # room for all: none lost to the queue
        )
        assert 0 == result.returncode, result.stderr
        lines = stderr_lines(result)
        assert 1 == len(lines), lines
        assert "otel_llm: cannot export" in lines[0]
        assert "connection refused" in lines[0]
        drops = counted(result)
        assert 3001 == drops.get("traces/export_failed", 0) + drops.get("traces/collector_down", 0)
        # One attempt fails, the rest are dropped unsent; the exit flush may probe once more.
        assert drops.get("traces/export_failed", 0) <= 2 * 512
        assert 0 < drops.get("metrics/export_failed", 0) + drops.get("metrics/collector_down", 0)

    def test_hanging_collector_does_not_hang_exit(self, hanging: Hanging) -> None:
        """A collector that accepts and never answers: exit waits the flush timeout, once."""
        result = run_script(
            f"http://127.0.0.1:{hanging.port}", env={OTEL_LLM_EXPORT_FLUSH_TIMEOUT: "500"}
        )
        assert 0 == result.returncode, result.stderr
        lines = stderr_lines(result)
        assert 1 == len(lines), lines
        assert "no answer within" in lines[0]
        assert 1 <= len(hanging.accepted)

    def test_unavailable_collector_one_warning(self, unavailable: Answering) -> None:
        """A collector answering 503: one warning, no retry lines, both signals counted."""
        result = run_script(f"http://127.0.0.1:{unavailable.port}")
        assert 0 == result.returncode, result.stderr
        lines = stderr_lines(result)
        assert 1 == len(lines), lines
        assert "Service Unavailable" in lines[0]
        drops = counted(result)
        assert 1 == drops.get("traces/export_failed", 0) + drops.get("traces/collector_down", 0)
        assert 1 <= unavailable.requests

    def test_healthy_collector_gets_both_signals(self, healthy: Answering) -> None:
        """A collector answering 200: nothing on stderr, nothing dropped."""
        result = run_script(f"http://127.0.0.1:{healthy.port}")
        assert 0 == result.returncode, result.stderr
        assert [] == stderr_lines(result)
        assert {} == counted(result)
        assert 2 <= healthy.requests  # traces and metrics

    def test_drops_on_the_prometheus_endpoint(self) -> None:
        """With the direct /metrics endpoint, dropped spans show as a Prometheus counter."""
        port = closed_port()
        result = run_script(f"http://127.0.0.1:{closed_port()}", prometheus_port=port)
        assert 0 == result.returncode, result.stderr
        lines = json.loads(result.stdout.strip().splitlines()[0])
        name = "otel_llm_exporter_span_dropped_total"
        samples = [line for line in lines if line.startswith(name)]
        assert 1 == len(samples), lines
        assert 'error_type="export_failed"' in samples[0]
        assert samples[0].endswith(" 1.0")
