"""The adapter registry: each adapter module declares its routes; the table is built from them."""

from __future__ import annotations

import pytest

from otel_llm import semconv as sc
from otel_llm._types import Endpoint, Routes
from otel_llm.adapters import (
    REGISTERED,
    build_table,
    lmstudio,
    match,
    ollama,
    ollama_models,
    openai_compat,
)


class TestRegistry:
    def test_every_declared_path_matches_its_module(self) -> None:
        """match() answers each declared path with that module's adapter, operation, provider."""
        expected = {
            path: Endpoint(routes.adapter, operation, routes.provider)
            for routes in REGISTERED
            for path, operation in routes.endpoints.items()
        }
        methods = {path: routes.method for routes in REGISTERED for path in routes.endpoints}
        assert expected == {path: match(methods[path], path) for path in expected}

    def test_registered_modules(self) -> None:
        """Ollama's native API names its provider; /v1 does not; LM Studio's /api/v0 does."""
        assert [
            ("/api/", "ollama"),
            ("/v1/", None),
            ("/api/v0/", "lm_studio"),
            ("/api/", "ollama"),
            ("/api/", "ollama"),
        ] == [(routes.prefix, routes.provider) for routes in REGISTERED]
        assert [
            ollama.ROUTES,
            openai_compat.ROUTES,
            lmstudio.ROUTES,
            ollama_models.ROUTES,
            ollama_models.DELETE_ROUTES,
        ] == list(REGISTERED)

    def test_delete_is_matched_only_as_delete(self) -> None:
        """``DELETE /api/delete`` is a model operation; a POST there, or a GET, is not."""
        hit = match("DELETE", "/api/delete")
        assert hit is not None
        assert ("delete", "ollama") == (hit.operation, hit.provider)
        assert None is match("POST", "/api/delete")
        assert None is match("GET", "/api/delete")
        assert None is match("DELETE", "/api/chat")

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
        "path", ["/api/tags", "/api/v0/models", "/v1/models", "/x/api/ps", "/", ""]
    )
    def test_other_paths_are_not_calls(self, path: str) -> None:
        """Paths no module declares, mounted or not, are not LLM calls."""
        assert None is match("POST", path)
