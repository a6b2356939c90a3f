"""The adapter registry: each adapter module declares its routes; the table is built from them."""

from __future__ import annotations

import pytest

from otel_llm import semconv as sc
from otel_llm._types import Endpoint, Routes
from otel_llm.adapters import REGISTERED, build_table, lmstudio, match, ollama, openai_compat


class TestRegistry:
    def test_every_declared_path_matches_its_module(self) -> None:
        """match() answers each declared path with that module's adapter, operation, provider."""
        expected = {
            path: Endpoint(routes.adapter, operation, routes.provider)
            for routes in REGISTERED
            for path, operation in routes.endpoints.items()
        }
        assert expected == {path: match("POST", path) for path in expected}

    def test_registered_modules(self) -> None:
        """Ollama's native API names its provider; /v1 does not; LM Studio's /api/v0 does."""
        assert [("/api/", "ollama"), ("/v1/", None), ("/api/v0/", "lm_studio")] == [
            (routes.prefix, routes.provider) for routes in REGISTERED
        ]
        assert [ollama.ROUTES, openai_compat.ROUTES, lmstudio.ROUTES] == list(REGISTERED)

    def test_a_path_claimed_twice_is_refused(self) -> None:
        """Two modules claiming one path is a bug caught at import, not a silent override."""
        other = Routes(ollama.adapter, {"/v1/embeddings": sc.EMBEDDINGS}, prefix="/v1/")
        with pytest.raises(ValueError, match="/v1/embeddings"):
            build_table([openai_compat.ROUTES, other])

    def test_a_path_outside_its_prefix_is_refused(self) -> None:
        """A path must start with its module's prefix (the prefix finds mounted servers)."""
        stray = Routes(ollama.adapter, {"/x/chat": sc.CHAT}, prefix="/api/")
        with pytest.raises(ValueError, match="/x/chat"):
            build_table([stray])

    @pytest.mark.parametrize(
        ("path", "provider"),
        [
            ("/ollama/api/chat", "ollama"),
            ("/proxy/v1/embeddings", None),
            ("/lab/api/v0/embeddings", "lm_studio"),
            ("/a/api/b/v1/chat/completions", None),
        ],
    )
    def test_mounted_paths(self, path: str, provider: str | None) -> None:
        """A server behind a path prefix is found by its module's prefix."""
        hit = match("POST", path)
        assert hit is not None
        assert provider == hit.provider

    @pytest.mark.parametrize(
        "path", ["/api/pull", "/api/v0/models", "/v1/models", "/x/api/show", "/", ""]
    )
    def test_other_paths_are_not_calls(self, path: str) -> None:
        """Paths no module declares, mounted or not, are not LLM calls."""
        assert None is match("POST", path)
