# One image for web, worker and beat (and the sandbox in the demo profile); the monitoring
# profile builds it once more with the `flower` extra for Flower.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY worker ./worker
COPY leadterra_sandbox ./leadterra_sandbox
# EXTRAS="[flower]" for docker-compose.yml's flower service; web, worker and beat need none
ARG EXTRAS=""
RUN pip install ".${EXTRAS}" && useradd --system --uid 10001 leadrouter

USER leadrouter
# 8000: Leadterra's webhooks (PORT); 9000: the admin listener (ADMIN_PORT), /metrics and /readyz
EXPOSE 8000 9000
CMD ["leadrouter", "web"]
