"""The legacy Jaeger path: ``OTEL_TRACES_EXPORTER=jaeger`` with the ``[jaeger]`` extra.

For Jaeger agents and collectors that predate OTLP. opentelemetry-exporter-jaeger-thrift
(1.21, its last release: upstream removed the exporter once Jaeger took OTLP natively)
sends Thrift: compact protocol in UDP datagrams to an agent (``emitBatch``, port 6831), or
a binary-protocol ``Batch`` in an HTTP POST to a collector's ``/api/traces``. Each test
receives on 127.0.0.1 what the exporter sends after a real instrumented call to the mock
Ollama, and decodes it with the Thrift classes the exporter ships.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_llm
from otel_llm._setup import _JAEGER_ENV
from otel_llm.testing.mock_ollama import MockOllama

thrift = pytest.importorskip("thrift", reason="the [jaeger] extra is not installed")
from thrift.protocol.TBinaryProtocol import TBinaryProtocol  # noqa: E402
from thrift.protocol.TCompactProtocol import TCompactProtocol  # noqa: E402
from thrift.transport.TTransport import TMemoryBuffer  # noqa: E402

# Constants opentelemetry-sdk dropped after the exporter's last release; the exporter
# still imports them from opentelemetry.sdk.environment_variables. Each is its own name.
JAEGER_ENV = _JAEGER_ENV  # the names otel_llm._setup puts back before importing


def exporter_module() -> Any:
    """The exporter package, with the SDK constants it imports put back where missing."""
    env = importlib.import_module("opentelemetry.sdk.environment_variables")
    for name in JAEGER_ENV:
        if not hasattr(env, name):
            setattr(env, name, name)
    return importlib.import_module("opentelemetry.exporter.jaeger.thrift")


def gen(name: str) -> Any:
    """The exporter's generated Thrift classes (importing them imports the exporter)."""
    exporter_module()
    return importlib.import_module(f"opentelemetry.exporter.jaeger.thrift.gen.{name}")


def tags(span: Any) -> dict[str, Any]:
    """A Jaeger span's tags as ``{key: value}`` (whichever typed field is set)."""
    out = {}
    for tag in span.tags or []:
        for value in (tag.vStr, tag.vLong, tag.vDouble, tag.vBool):
            if value is not None:
                out[tag.key] = value
                break
    return out


def decode_agent_datagram(data: bytes) -> Any:
    """An agent UDP datagram (compact protocol, ``emitBatch`` oneway call) → the Batch."""
    proto = TCompactProtocol(TMemoryBuffer(data))
    name, _kind, _seqid = proto.readMessageBegin()
    assert "emitBatch" == name
    args = gen("agent").Agent.emitBatch_args()
    args.read(proto)
    proto.readMessageEnd()
    return args.batch


def decode_collector_body(body: bytes) -> Any:
    """A collector POST body (binary protocol ``Batch`` struct) → the Batch."""
    batch = gen("jaeger").ttypes.Batch()
    batch.read(TBinaryProtocol(TMemoryBuffer(body)))
    return batch


def chat(mock: MockOllama) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    with httpx.Client(base_url=mock.url) as client:
        client.post("/api/chat", json={**body, "stream": False}).raise_for_status()


@pytest.fixture
def udp_agent() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 standing in for the Jaeger agent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    try:
        yield sock
    finally:
        sock.close()


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, self.headers["Content-Type"], self.rfile.read(length)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """An HTTP server on 127.0.0.1 standing in for a Jaeger collector's Thrift endpoint."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/traces", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def instrumented_with() -> Iterator[Any]:
    """Instrument with a TracerProvider exporting through a given span exporter."""
    providers: list[TracerProvider] = []

    def install(exporter: Any) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "jaeger-legacy-app"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        otel_llm.uninstrument()
        otel_llm.instrument(tracer_provider=provider)

    try:
        yield install
    finally:
        otel_llm.uninstrument()
        for provider in providers:
            provider.shutdown()


def assert_llm_batch(batch: Any) -> None:
    """One GenAI span, as Jaeger receives it, under the app's service name."""
    assert "jaeger-legacy-app" == batch.process.serviceName
    [span] = [s for s in batch.spans if s.operationName == "chat llama3.2"]
    attrs = tags(span)
    assert ("chat", "ollama", "llama3.2", "client") == (
        attrs["gen_ai.operation.name"],
        attrs["gen_ai.provider.name"],
        attrs["gen_ai.request.model"],
        attrs["span.kind"],
    )
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert span.traceIdLow != 0 and span.spanId != 0 and span.duration > 0


class TestWire:
    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_agent_udp_compact_thrift(
        self, udp_agent: socket.socket, instrumented_with: Any
    ) -> None:
        """Agent mode: one UDP datagram, compact protocol, decodes to the LLM span."""
        port = udp_agent.getsockname()[1]
        instrumented_with(
            exporter_module().JaegerExporter(agent_host_name="127.0.0.1", agent_port=port)
        )
        with MockOllama() as mock:
            chat(mock)
        data, _ = udp_agent.recvfrom(65535)
        assert_llm_batch(decode_agent_datagram(data))

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_collector_http_binary_thrift(
        self, http_collector: tuple[str, list[tuple[str, str, bytes]]], instrumented_with: Any
    ) -> None:
        """Collector mode: a POST to /api/traces, binary protocol Batch, decodes to the LLM span."""
        url, received = http_collector
        instrumented_with(exporter_module().JaegerExporter(collector_endpoint=url))
        with MockOllama() as mock:
            chat(mock)
        [(path, content_type, body)] = received
        assert ("/api/traces", "application/x-thrift") == (path, content_type)
        assert_llm_batch(decode_collector_body(body))


# The user's path, in a fresh interpreter: nothing set up but the environment.
APP = """
import sys, httpx, otel_llm
otel_llm.instrument()
body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
httpx.post(sys.argv[1] + "/api/chat", json=body).raise_for_status()
from opentelemetry import trace
trace.get_tracer_provider().shutdown()   # flush the batch processor
"""


class TestEnvironment:
    def test_otel_traces_exporter_jaeger_sends_to_the_agent(self, udp_agent: socket.socket) -> None:
        """OTEL_TRACES_EXPORTER=jaeger and an agent address: instrument() alone reaches it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OLLAMA"))}
        env.update(
            OTEL_SERVICE_NAME="jaeger-legacy-app",
            OTEL_TRACES_EXPORTER="jaeger",
            OTEL_METRICS_EXPORTER="none",
            OTEL_EXPORTER_JAEGER_AGENT_HOST="127.0.0.1",
            OTEL_EXPORTER_JAEGER_AGENT_PORT=str(udp_agent.getsockname()[1]),
            PYTHONWARNINGS="ignore::DeprecationWarning",
        )
        with MockOllama() as mock:
            result = subprocess.run(
                [sys.executable, "-c", APP, mock.url],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert 0 == result.returncode, result.stderr
        udp_agent.settimeout(2)
        try:
            data, _ = udp_agent.recvfrom(65535)
        except TimeoutError:
            raise AssertionError(f"no datagram; app stderr:\n{result.stderr}") from None
        assert_llm_batch(decode_agent_datagram(data))
