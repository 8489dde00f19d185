"""How the server and `goldloop worker` write their logs: readable text or JSON lines
(``log_format``), with secrets masked on the way out.

Goldloop never passes a key to a log call on purpose; ``SecretMask`` is the second line of
defence for what a library or an exception message might carry: anything shaped like a Goldloop
API key (``gl_...``) or webhook signing secret (``whsec_...``), a bearer token, or an
``api_key=``/``secret=``/``password=``/``token=`` value is replaced by ``***`` in the message,
its arguments and its traceback, whatever the format.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# what a request log record may carry besides the message (set through ``extra=``)
REQUEST_FIELDS = ("request_id", "method", "route", "path", "status", "duration_ms", "client")
TEXT_FIELDS = ("route", "request_id")

_SECRETS = re.compile(
    r"(?P<key>\b(?:gl|whsec)_[A-Za-z0-9_-]{8,})"
    r"|(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<pair>(?i:api[_-]?key|secret|password|token)\s*[=:]\s*)[^\s&,;\"']+"
)


def mask(text: str) -> str:
    """``text`` with anything that looks like a key or secret replaced by ``***``."""

    def one(m: re.Match[str]) -> str:
        if m.group("key"):
            return m.group("key").split("_", 1)[0] + "_***"
        return (m.group("bearer") or m.group("pair") or "") + "***"

    return _SECRETS.sub(one, text)


class SecretMask(logging.Filter):
    """Formats the record's message once, masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for the formatter to report
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, the request
    fields when present, and the exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-12-07T09:00:00.123Z level logger message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        line = f"{ts}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
        line += record.getMessage()
        # a request line's message already says method, path, status and duration
        extras = [f"{n}={getattr(record, n)}" for n in TEXT_FIELDS if hasattr(record, n)]
        if extras:
            line += " " + " ".join(extras)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure(level: str, fmt: str, stream: Any = None) -> logging.Handler:
    """Send every log record (Goldloop's, uvicorn's, the libraries') to one handler on stderr
    in ``fmt`` (text or json), masked; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SecretMask())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Goldloop logs each request itself (with its id, route and duration); uvicorn's access
    # line would repeat it with the raw query string.
    logging.getLogger("uvicorn.access").disabled = True
    return handler
