"""Structured logs: JSON lines when not on a TTY (one object per line, ``event`` first), console otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


def configure(fmt: str = "auto", stream: TextIO | None = None,
              level: int = logging.INFO) -> structlog.typing.FilteringBoundLogger:
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if use_json
                     else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
                    renderer],
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger()
    bridge(logger, level)
    return logger


class _Bridge(logging.Handler):
    """Lines the output stages log through the standard library (``inferguard.notify``,
    ``inferguard.actuation``: "event key=value ..."), as the daemon's own events: one log, one format."""

    def __init__(self, logger: structlog.typing.FilteringBoundLogger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event, _, detail = record.getMessage().partition(" ")
            self.logger.log(record.levelno, event, detail=detail, logger=record.name)
        except Exception:  # a log line must never take the daemon down
            self.handleError(record)


def bridge(logger: structlog.typing.FilteringBoundLogger, level: int) -> None:
    """Send the ``inferguard`` standard-library loggers to ``logger`` (replacing an earlier bridge)."""
    root = logging.getLogger("inferguard")
    for h in [h for h in root.handlers if isinstance(h, _Bridge)]:
        root.removeHandler(h)
    root.addHandler(_Bridge(logger))
    root.setLevel(level)
