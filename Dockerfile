# callbot service image (deploy/README.md runs it with PostgreSQL, Rasa and Caddy: deploy/compose.yml).
# The Rasa sidecar needs Python 3.10: this image runs the service only and expects an external Rasa
# (CALLBOT_RASA_URL), for example the official rasa/rasa:3.6.21-full image beside it.
# deploy/check_image_build.py performs these build steps on a machine without Docker (run by the test suite).

# --- builder: the service and its pinned dependencies, installed (not editable) into /opt/venv ---
FROM python:3.11-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# constraints.txt pins every dependency to the versions CI tests (make lock)
COPY constraints.txt pyproject.toml README.md ./
COPY callbot callbot
COPY nlu nlu
COPY telephony telephony
COPY routing routing
RUN pip install --no-cache-dir -c constraints.txt '.[whisper-base]'

# --- runtime: the virtualenv, the example bots, a non-root user ---
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="callbot" \
      org.opencontainers.image.description="Self-hosted callbot and overflow voicebot for customer-service phone lines" \
      org.opencontainers.image.licenses="Apache-2.0"
# The speech engines (Vosk, piper, onnxruntime), numpy and psycopg carry their own libraries in their wheels:
# the service needs no Debian package beyond the base image (no sox, no ffmpeg, no curl).
RUN groupadd --system --gid 10001 callbot \
    && useradd --system --uid 10001 --gid callbot --home-dir /data --no-create-home --shell /usr/sbin/nologin callbot \
    && mkdir -p /data /models /bot \
    && chown callbot:callbot /data /models /bot
COPY --from=builder /opt/venv /opt/venv
# The example bots stay read-only in the image; the entrypoint copies CALLBOT_BOT_SEED into an empty /bot volume,
# where the console's edits are kept.
COPY bots /app/bots
COPY deploy/docker-entrypoint.sh /usr/local/bin/callbot-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CALLBOT_HOST=0.0.0.0 \
    CALLBOT_PORT=8080 \
    CALLBOT_DATA_DIR=/data \
    CALLBOT_MODELS_DIR=/models \
    CALLBOT_BOT_DIR=/bot \
    CALLBOT_BOT_SEED=/app/bots/fr
WORKDIR /app
VOLUME ["/data", "/models", "/bot"]
EXPOSE 8080
# the user callbot, by number: a runtime (Kubernetes' runAsNonRoot) can check it is not root without the image's /etc/passwd
USER 10001:10001
# Ready: the database answers and the instance is below CALLBOT_MAX_CALLS (docs/deployment.md); the slim image has
# no curl, Python's urllib does it. The first start with a voice synthesizes the fixed prompts (about a minute on two
# cores; cached in /data afterwards), hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CALLBOT_PORT', '8080') + '/readyz', timeout=4)"]
ENTRYPOINT ["callbot-entrypoint"]
CMD ["callbot", "serve"]
