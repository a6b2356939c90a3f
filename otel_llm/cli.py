"""``otel-llm``: the command line (mock server, demo)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: otel-llm COMMAND [ARGS]

commands:
  demo          run the traced demo chain (built-in mock Ollama if none is running)
  mock-ollama   serve the mock Ollama on 127.0.0.1 (--port, --scenario FILE, --ttft, --reply)
  proxy         sidecar in front of Ollama: spans and metrics for any client (--help)
  check         check exported traces (OTLP JSON files, Jaeger) against a YAML spec (--help)
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "mock-ollama":
        from otel_llm.testing.mock_ollama import main as serve

        return serve(rest)
    if command == "proxy":
        try:
            from otel_llm.proxy.server import main as proxy
        except ImportError as exc:
            sys.stderr.write(f"otel-llm proxy needs `pip install 'otel-llm[proxy]'` ({exc})\n")
            return 2
        return proxy(rest)
    if command == "check":
        from otel_llm.check import main as check

        return check(rest)
    if command == "demo":
        from otel_llm.demo import main as demo

        return demo(rest)
    sys.stderr.write(f"otel-llm: unknown command {command!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
