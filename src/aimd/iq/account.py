"""The unprivileged account an installed release's services run under (002 §4.1.1 hardened reference, §6.2.1 d).

An install with a service account leaves code and configuration owned by root: the account reads the
configuration through its group (folders 0750, files 0640) and cannot change it; only ``data/`` is
the account's (0750, files without bits for others). Backups and the install state stay root's (0700).
A process started as root for the account gives up root before it runs (:meth:`ServiceAccount.popen_kwargs`).

Example
-------
>>> try:
...     lookup_account("no-such-account-here")
... except InvalidInputError as err:
...     print(str(err).split(" (fix")[0])
--service-user: service account 'no-such-account-here' does not exist
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aimd.core.errors import InvalidInputError

if TYPE_CHECKING:
    from aimd.iq.install import Layout

CONFIG_DIR_MODE, CONFIG_FILE_MODE, DATA_DIR_MODE, PRIVATE_DIR_MODE = 0o750, 0o640, 0o750, 0o700


def _create_hint(name: str) -> str:
    return f"create it first: useradd --system --no-create-home --shell /usr/sbin/nologin {name}"


@dataclass(frozen=True)
class ServiceAccount:
    """A system account: its name, uid and primary gid."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments that drop root for this account (no supplementary groups); none when not root."""
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with HOME and USER of the account when root starts a process for it."""
        if os.geteuid() != 0:
            return base
        entry = pwd.getpwuid(self.uid)
        return {**base, "HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}

    def cannot_run(self, python: str | Path, *folders: Path) -> str | None:
        """Why the account cannot start ``python`` and list ``folders`` (a private parent, say); None if it can."""
        code = "import os, sys\nfor f in sys.argv[1:]: os.listdir(f)"
        try:
            done = subprocess.run(
                [str(python), "-I", "-c", code, *map(str, folders)],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
                **self.popen_kwargs(),
            )
        except OSError as err:  # the interpreter itself cannot be started by the account
            return f"{err.strerror}: {err.filename}"
        if done.returncode == 0:
            return None
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"


def lookup_account(name: str) -> ServiceAccount:
    """The existing, unprivileged system account ``name``; a clear error naming it otherwise."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise InvalidInputError(
            f"service account {name!r} does not exist", where="--service-user", hint=_create_hint(name)
        ) from None
    if entry.pw_uid == 0:
        raise InvalidInputError(
            f"service account {name!r} is root",
            where="--service-user",
            hint="name an unprivileged account; " + _create_hint("aimd"),
        )
    return ServiceAccount(name, entry.pw_uid, entry.pw_gid)


def ensure_system_account(name: str) -> bool:
    """Create the system account ``name`` (no home, no login shell) unless it exists; whether it was created."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    done = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 and done.returncode != 9:  # 9: created meanwhile by another process
        raise InvalidInputError(
            f"could not create service account {name!r}: {done.stderr.strip()}",
            where="useradd",
            hint="run as root, or create the account by hand: " + _create_hint(name).split(": ", 1)[1],
        )
    return True


def interpreter_for(account: ServiceAccount, *folders: Path) -> str | None:
    """The first Python of this version the account can start (this one, then the system's); None if none."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/python{version}", shutil.which(f"python{version}")]
    for python in dict.fromkeys(c for c in candidates if c):
        if Path(python).exists() and account.cannot_run(python, *folders) is None:
            return python
    return None


def _chown_tree(root: Path, uid: int, gid: int, dir_mode: int, file_mode: int | None) -> None:
    paths = [root, *root.rglob("*")]
    for path in paths:
        if path.is_symlink():
            continue
        os.chown(path, uid, gid)
        if path.is_dir():
            os.chmod(path, dir_mode)
        else:
            mode = stat.S_IMODE(path.stat().st_mode)
            os.chmod(path, file_mode if file_mode is not None else mode & ~0o007)


def apply_service_layout(layout: Layout, account: ServiceAccount) -> dict[str, Any]:
    """Give ``data/`` to the account, its group read access to ``config/``, and keep the rest root's."""
    me = os.geteuid()
    if me != 0 and me != account.uid:
        raise InvalidInputError(
            f"giving the data folder to {account.name!r} needs root",
            where=str(layout.prefix),
            hint="run the install as root, or leave out --service-user",
        )
    owner = 0 if me == 0 else me
    os.chmod(layout.prefix, 0o755)
    layout.data.mkdir(parents=True, exist_ok=True)
    layout.config.mkdir(parents=True, exist_ok=True)
    _chown_tree(layout.data, account.uid, account.gid, DATA_DIR_MODE, None)
    _chown_tree(layout.config, owner, account.gid, CONFIG_DIR_MODE, CONFIG_FILE_MODE)
    for private in (layout.backups, layout.history.parent):
        private.mkdir(parents=True, exist_ok=True)
        os.chmod(private, PRIVATE_DIR_MODE)
    return {"account": account.name, "uid": account.uid, "gid": account.gid, "data": oct(DATA_DIR_MODE)}


def share_with_service(path: Path, account: ServiceAccount | None) -> None:
    """Let the account's group read ``path`` (a TLS key, say: root-owned, 0640); nothing without an account."""
    if account is None:
        return
    os.chown(path, -1, account.gid)
    os.chmod(path, CONFIG_FILE_MODE)


__all__ = [
    "ServiceAccount",
    "apply_service_layout",
    "ensure_system_account",
    "interpreter_for",
    "lookup_account",
    "share_with_service",
]
