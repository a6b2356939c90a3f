"""``python -m otel_llm.testing.mock_ollama``: the same as ``otel-llm mock-ollama``."""

from otel_llm.testing.mock_ollama._cli import main

raise SystemExit(main())
