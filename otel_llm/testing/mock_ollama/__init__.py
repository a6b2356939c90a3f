"""A loopback server that answers like Ollama (split into modules in the next commit)."""

from otel_llm.testing.mock_ollama._app import *  # noqa: F403
from otel_llm.testing.mock_ollama._app import __all__, _full_name  # noqa: F401
