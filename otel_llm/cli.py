"""``otel-llm``: the command line (mock server, demo)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: otel-llm COMMAND [ARGS]

commands:
  demo          run the traced demo chain (built-in mock Ollama if none is running)
  mock-ollama   serve the mock Ollama on 127.0.0.1 (--port, --ttft, --chunk-delay, --reply)
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
    if command == "demo":
        from otel_llm.demo import main as demo

        return demo(rest)
    sys.stderr.write(f"otel-llm: unknown command {command!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
