"""Logging to stderr (stdout is kept for documents a verb prints, such as the demo's curl line)."""

from __future__ import annotations

import logging
import os
import sys
import time

LEVELS = ("debug", "info", "warning", "error")


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once; ``level`` defaults to $SLUICEGATE_LOG_LEVEL or info."""
    name = (level or os.environ.get("SLUICEGATE_LOG_LEVEL") or "info").lower()
    if name not in LEVELS:
        name = "info"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(name.upper())
    # httpx logs every request at INFO, URLs included; the gateway logs its own summary instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
