"""Write a small pure-Python wheel (PEP 427) from a mapping of files — for drills and fixtures of the installer.

Example
-------
>>> import tempfile, pathlib, zipfile
>>> whl = write_wheel(pathlib.Path(tempfile.mkdtemp()), "iq-probe", "1.0.0", {"iq_probe/__init__.py": "X = 1\\n"})
>>> whl.name
'iq_probe-1.0.0-py3-none-any.whl'
>>> sorted(zipfile.ZipFile(whl).namelist())[-1]
'iq_probe/__init__.py'
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(out_dir: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A ``py3-none-any`` wheel holding ``files`` (relative path → text) with METADATA, WHEEL and RECORD."""
    dist = str(canonicalize_name(name)).replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = {path: text.encode("utf-8") for path, text in files.items()}
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    contents[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: aimd\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    tops = sorted({p.split("/", 1)[0].removesuffix(".py") for p in files})
    contents[f"{info}/top_level.txt"] = ("\n".join(tops) + "\n").encode()
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(contents, key=lambda p: (p.startswith(info), p)):
            info_entry = zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0))
            info_entry.external_attr = 0o644 << 16
            zf.writestr(info_entry, contents[rel])
    return path


__all__ = ["write_wheel"]
