"""Log set-up: upstream's level names, text or JSON lines on stderr.

Callers pass only safe values (pod and SPC names, counts, codes): the request's
attributes, secrets, tokens and file contents never reach a log call.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback

__all__ = ["TRACE", "configure", "where_raised"]

TRACE = 5
_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}
# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: str = "text") -> None:
    logging.addLevelName(TRACE, "TRACE")
    # Neither format shows them: not looked up (a getpid system call) for every record.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    # Nor the caller's file and line: no frame walk per record (the logging HOWTO's own advice).
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])


def where_raised(exc: BaseException) -> str:
    """The traceback's frames, for a log line about a bug of ours; never the exception's text,
    which could quote request data (attributes, secrets)."""
    return "".join(traceback.format_tb(exc.__traceback__))
