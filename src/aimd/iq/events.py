"""The install / rollback / IQ event log (002 §5.4.1, §6.5.1): JSON lines, hash-chained.

Every task goes through ``created`` → ``approved`` → ``executed`` (one per step) → ``completed`` or
``failed``; each entry records the time, operator, machine, parameters and result, and the SHA-256
of the previous entry (the chain of :mod:`aimd.core.audit`), so a changed, removed or reordered line
is found by :func:`chain_break`.

Example
-------
>>> import tempfile, pathlib
>>> log = EventLog(pathlib.Path(tempfile.mkdtemp()) / "events.jsonl", operator="qa")
>>> task = log.task("install", {"bundle": "b"})
>>> task.approved("qa"); task.executed("verify", {"files": 3}); task.completed({"version": "1.0.0"})
>>> [e["event"] for e in read_events(log.path)]
['created', 'approved', 'executed', 'completed']
>>> chain_break(read_events(log.path)) is None
True
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aimd.core.audit import chain_break, link
from aimd.core.errors import InvalidInputError

LIFECYCLE = ("created", "approved", "executed", "completed", "failed")


def machine() -> dict[str, str]:
    """Host name, OS and architecture of this machine."""
    return {"host": socket.gethostname(), "os": platform.platform(), "arch": platform.machine()}


def default_operator() -> str:
    """``AIMD_OPERATOR`` or the login name."""
    return os.environ.get("AIMD_OPERATOR") or getpass.getuser()


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All entries of an event log (empty when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InvalidInputError(
                f"line {n} is not JSON: {err.msg}",
                where=str(path),
                hint="the event log was edited by hand; restore it from the backup",
            ) from err
    return out


class EventLog:
    """Append-only, hash-chained JSON-lines log of lifecycle events."""

    def __init__(self, path: str | Path, *, operator: str | None = None) -> None:
        self.path = Path(path)
        self.operator = operator or default_operator()
        self._machine = machine()

    def append(
        self,
        *,
        task_id: str,
        kind: str,
        event: str,
        step: str | None = None,
        parameters: dict[str, Any] | None = None,
        result: Any = None,
        operator: str | None = None,
    ) -> dict[str, Any]:
        """Write one entry, linked to the last one, fsynced before returning."""
        if event not in LIFECYCLE:
            raise ValueError(f"event must be one of {LIFECYCLE}, got {event!r}")
        existing = read_events(self.path)
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "task_id": task_id,
            "kind": kind,
            "event": event,
            "step": step,
            "operator": operator or self.operator,
            "machine": self._machine,
            "pid": os.getpid(),
            "parameters": json.loads(json.dumps(parameters or {}, default=str)),
            "result": json.loads(json.dumps(result, default=str)),
        }
        entry = link(entry, existing[-1]["sha256"] if existing else None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry

    def task(self, kind: str, parameters: dict[str, Any]) -> Task:
        """Open a task: writes its ``created`` event."""
        task = Task(self, kind, uuid.uuid4().hex[:12])
        self.append(task_id=task.id, kind=kind, event="created", parameters=parameters)
        return task


class Task:
    """One task's events (install, rollback, IQ run)."""

    def __init__(self, log: EventLog, kind: str, task_id: str) -> None:
        self.log, self.kind, self.id = log, kind, task_id

    def approved(self, approver: str) -> None:
        """The task was approved by ``approver``."""
        self.log.append(
            task_id=self.id, kind=self.kind, event="approved", operator=approver, result={"approved_by": approver}
        )

    def executed(self, step: str, result: Any = None, parameters: dict[str, Any] | None = None) -> None:
        """One step ran."""
        self.log.append(
            task_id=self.id, kind=self.kind, event="executed", step=step, result=result, parameters=parameters
        )

    def completed(self, result: Any = None) -> None:
        """The task finished successfully."""
        self.log.append(task_id=self.id, kind=self.kind, event="completed", result=result)

    def failed(self, step: str, error: str, result: Any = None) -> None:
        """The task failed at ``step``."""
        self.log.append(
            task_id=self.id, kind=self.kind, event="failed", step=step, result={"error": error, **(result or {})}
        )


__all__ = ["LIFECYCLE", "EventLog", "Task", "chain_break", "default_operator", "machine", "read_events"]
