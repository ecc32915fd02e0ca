"""Logging set-up: text or JSON lines, each line carrying the id of the request it was
logged during.

The request id lives in a context variable, set by the request middleware
(`tidings/api/requests.py`); every task started while serving a request inherits it, so a
line logged anywhere below the route carries the id without being handed it.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from tidings.config.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("tidings_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id when there is
    one, and the formatted exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def configure(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Route every log record of the process (Tidings', uvicorn's, SQLAlchemy's, Python
    warnings) through one handler in the configured format, and return that handler.
    Replaces the root logger's handlers, so calling it twice does not print lines twice."""
    handler = make_handler(settings.log_format, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Library warnings (e.g. PyJWT's about a short key) become log lines in the same
    # format, instead of bare text in a JSON stream.
    logging.captureWarnings(True)
    return handler
