# callbot service image. The Rasa sidecar needs Python 3.10: this image runs the service only and expects an
# external Rasa (CALLBOT_RASA_URL) — for example a second container built from rasa/rasa:3.6.21.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY callbot callbot
COPY nlu nlu
COPY telephony telephony
COPY routing routing
COPY bots bots
RUN pip install --no-cache-dir .
ENV CALLBOT_HOST=0.0.0.0 CALLBOT_PORT=8080 CALLBOT_DATA_DIR=/data CALLBOT_MODELS_DIR=/models
VOLUME ["/data", "/models"]
EXPOSE 8080
CMD ["callbot", "serve"]
