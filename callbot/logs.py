"""Logging of the service: plain text (default) or one JSON object a line (``CALLBOT_LOG_FORMAT=json``), every
line of a call carrying its ``call_id`` as a field. Caller numbers and what callers said stay out of INFO lines
(they are personal data; DEBUG may show them)."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

CALL_ID: ContextVar[str | None] = ContextVar("call_id", default=None)
"""The call the running code works for: set where a call becomes known (the webhook, the media stream), and
inherited by every task started from there."""


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = CALL_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, call_id, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, style: Literal["text", "json"]) -> None:
    """The root logger's one handler, for the service and uvicorn alike."""
    handler = logging.StreamHandler()
    handler.addFilter(_CallIdFilter())
    if style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
