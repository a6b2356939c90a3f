# The otel-llm proxy in a container: every Ollama call through it becomes a GenAI span and
# GenAI metrics, exported over OTLP to $OTEL_EXPORTER_OTLP_ENDPOINT. Used by the `ollama`
# profile of docker-compose.observability.yml:
#   docker compose -f docker-compose.observability.yml --profile ollama up -d --build
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_llm ./otel_llm
RUN pip install ".[testing]"

USER 10001
EXPOSE 11435 9465
CMD ["otel-llm", "proxy", "--listen", "0.0.0.0:11435", "--upstream", "http://ollama:11434", "--admin", "0.0.0.0:9465"]
