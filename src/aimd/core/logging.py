"""Structured logging: JSON lines on stderr through structlog.

Example
-------
>>> log = get_logger("aimd.example")
>>> log.info("phantom.written", cases=3)  # doctest: +SKIP
{"event": "phantom.written", "cases": 3, "level": "info", "logger": "aimd.example", "timestamp": "..."}
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Configure structlog once per process; later calls change the level and renderer."""
    global _configured
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``name``; configures defaults from settings on first use."""
    if not _configured:
        from aimd.core.config import get_settings

        try:
            settings = get_settings()
            configure_logging(settings.log_level, settings.log_json)
        except Exception:
            configure_logging()
    return structlog.get_logger(name).bind(logger=name)


__all__ = ["configure_logging", "get_logger"]
