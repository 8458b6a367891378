"""Structured logging: JSON lines through structlog, on stderr or appended to a file.

The ``aimd`` command logs warnings and errors on stderr by default, so log lines never interleave
with its progress bars; ``AIMD_LOG_FILE`` sends every line at ``AIMD_LOG_LEVEL`` to a file instead, and
setting ``AIMD_LOG_LEVEL`` explicitly shows that level on stderr.

Example
-------
>>> log = get_logger("aimd.example")
>>> log.info("phantom.written", cases=3)  # doctest: +SKIP
{"event": "phantom.written", "cases": 3, "level": "info", "logger": "aimd.example", "timestamp": "..."}
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import structlog

_configured = False
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}
#: What configure_logging set; read when a line is logged, so loggers made earlier follow it too.
_state: dict[str, Any] = {"level": 20, "json": True, "stream": None}


def _drop_below_level(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if _LEVELS.get(method, 20) < _state["level"]:
        raise structlog.DropEvent
    return event


def _render(logger: Any, method: str, event: dict[str, Any]) -> str:
    if _state["json"]:
        return structlog.processors.JSONRenderer()(logger, method, event)
    return structlog.dev.ConsoleRenderer(colors=False)(logger, method, event)


class _Sink:
    """Writes rendered lines to the stream in force (stderr unless a log file was configured)."""

    def _write(self, message: str) -> None:
        stream = _state["stream"] or sys.stderr
        stream.write(message + "\n")
        stream.flush()

    def __getattr__(self, name: str) -> Any:
        return self._write


def configure_logging(level: str = "INFO", json: bool = True, file: str | Path | None = None) -> None:
    """Set the level, renderer and destination of every aimd logger (also those made earlier).

    ``file``: append log lines to this file (created with its folder) instead of writing to stderr.
    """
    global _configured
    stream: Any = None
    if file is not None:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
    _state.update(level=getattr(logging, level), json=json, stream=stream)
    if not _configured:
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                _drop_below_level,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                _render,
            ],
            wrapper_class=structlog.BoundLogger,
            logger_factory=lambda *args: _Sink(),
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
