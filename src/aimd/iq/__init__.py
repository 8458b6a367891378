"""aimd.iq — installation qualification (002): protocol, release bundles, install and rollback, IQ run, report.

* :class:`IQProtocol` (002 §4.1–§4.3, App. A.2, App. B) with :func:`protocol_template` and its JSON Schema;
* :func:`build_bundle` / :func:`verify_bundle` — signed release bundles (002 §5.2.1, §5.5, §6.6);
* :func:`install` / :func:`rollback` — offline install with automatic rollback and the one-command
  rollback, every step in the hash-chained :class:`EventLog` (002 §5.2, §5.4.1, §6.3.2);
* :class:`IQCheck` — one executable check (pass / fail / not evaluated, with its deviation); the run
  that executes them all and writes the App. C report is :func:`aimd.iq.runner.run_iq`.

Example
-------
>>> from aimd.iq import protocol_template
>>> protocol_template("1.0.0").device.version
'1.0.0'
"""

from aimd.iq.bundle import build_bundle, bundle_problems, verify_bundle
from aimd.iq.checks.base import CheckResult, IQCheck, IQContext, Verdict
from aimd.iq.events import EventLog, chain_break, read_events
from aimd.iq.install import InstallFailedError, InstallLockedError, Layout, RollbackError, install, rollback
from aimd.iq.protocol import IQProtocol, dump_protocol, load_protocol, protocol_schema
from aimd.iq.template import protocol_template

__all__ = [
    "CheckResult",
    "EventLog",
    "IQCheck",
    "IQContext",
    "IQProtocol",
    "InstallFailedError",
    "InstallLockedError",
    "Layout",
    "RollbackError",
    "Verdict",
    "build_bundle",
    "bundle_problems",
    "chain_break",
    "dump_protocol",
    "install",
    "load_protocol",
    "protocol_schema",
    "protocol_template",
    "read_events",
    "rollback",
    "verify_bundle",
]
