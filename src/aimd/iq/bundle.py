"""Release bundles (002 §5.2.1, §5.5, §6.6): wheels with hashes, models, configuration, documents, signed manifest.

A bundle is a folder::

    manifest.json        every file with SHA-256 and size, components and their versions
    manifest.sig         Ed25519 signature of manifest.json (base64)
    signing-key.pub      the signer's public key
    requirements.lock    ``name==version --hash=sha256:...`` for every wheel (pip --require-hashes)
    wheels/  models/  config/  docs/  migrations/  RELEASE-NOTES.md

One version runs through the product wheel, the model tags, the documents and the release notes
(002 §5.5.1 a–c); :func:`verify_bundle` finds a bad signature and any changed, missing or extra file.

Example
-------
>>> check_version_name("1.2.3"), check_version_name("1.2")
(True, False)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_text
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.iq.events import default_operator
from aimd.iq.signing import fingerprint, sign, verify

BUNDLE_FORMAT = "aimd-iq-bundle"
VERSION_PATTERN = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:(?:rc|a|b)(0|[1-9]\d*))?$")
NOTES_SECTIONS = {
    "changes": ("change", "feature", "变更", "功能"),
    "fixes": ("fix", "bug", "缺陷", "修复"),
    "dependencies": ("depend", "environment", "依赖", "环境"),
}
TEXT_SUFFIXES = {".md", ".txt", ".html", ".htm", ".rst", ".toml", ".yaml", ".yml", ".json"}
UNSIGNED = {"manifest.json", "manifest.sig"}


def check_version_name(version: str) -> bool:
    """Whether ``version`` is MAJOR.MINOR.PATCH with an optional pre-release (002 §6.6.1 d)."""
    return bool(VERSION_PATTERN.match(version))


def notes_problems(text: str, version: str) -> list[str]:
    """What release notes lack: the version and sections on changes, fixes and dependencies (002 §6.6.1 e).

    Example
    -------
    >>> notes_problems("# 1.0.0\\n## Changes\\n- a\\n## Fixes\\n- b\\n## Dependencies\\n- c\\n", "1.0.0")
    []
    >>> notes_problems("# 1.0.0\\nsome text", "1.0.0")
    ['no changes section', 'no fixes section', 'no dependencies section']
    """
    problems = [] if version in text else [f"version {version} not named"]
    headings = [line.lstrip("#").strip().lower() for line in text.splitlines() if line.startswith("#")]
    for section, words in NOTES_SECTIONS.items():
        if not any(w in h for h in headings for w in words):
            problems.append(f"no {section} section")
    return problems


def wheel_identity(path: Path) -> tuple[str, str]:
    """Canonical distribution name and version from a wheel's file name."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename as err:
        raise InvalidInputError(
            f"not a wheel file name: {err}", where=str(path), hint="pass wheels named name-version-tags.whl"
        ) from err
    return str(canonicalize_name(name)), str(version)


def build_product_wheel(source: Path, out: Path) -> Path:
    """Build the product's wheel from its source tree with pip (no network, no build isolation)."""
    if not (source / "pyproject.toml").is_file():
        raise InvalidInputError(
            "no pyproject.toml in the source folder",
            where=str(source),
            hint="pass --source with the project root or --wheel with a built wheel",
        )
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise InvalidInputError(
            f"building the wheel failed: {proc.stderr.strip()[-400:]}",
            where=str(source),
            hint="check that `pip wheel` builds the project",
        )
    return wheels[-1]


def download_locked(lock: Path, out: Path) -> list[Path]:
    """``pip download`` the pinned requirements of ``lock`` as binary wheels into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-r",
            str(lock),
            "-d",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidInputError(
            f"downloading the locked wheels failed: {proc.stderr.strip()[-400:]}",
            where=str(lock),
            hint="pin every requirement as name==version",
        )
    return sorted(out.glob("*.whl"))


def _copy_docs(docs: list[Path], dest: Path, version: str) -> list[dict[str, str]]:
    out = []
    for doc in docs:
        if not doc.is_file():
            raise InvalidInputError("document not found", where=str(doc), hint="pass existing user documents")
        data = doc.read_bytes()
        if version.encode() not in data:
            raise InvalidInputError(
                f"document does not state version {version}",
                where=str(doc),
                hint="documents must carry the release version (002 §5.5.1 b)",
            )
        shutil.copy2(doc, dest / doc.name)
        out.append({"name": doc.name, "kind": "document", "version": version})
    return out


def _copy_models(models: list[Path], dest: Path, version: str) -> list[dict[str, str]]:
    out = []
    for model in models:
        if not model.is_file():
            raise InvalidInputError("model file not found", where=str(model), hint="pass existing model files")
        shutil.copy2(model, dest / model.name)
        out.append({"name": model.name, "kind": "model", "version": version, "tag": f"{model.stem}@{version}"})
    return out


def _file_list(root: Path) -> list[dict[str, Any]]:
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in UNSIGNED:
            continue
        files.append(
            {
                "path": rel,
                "sha256": sha256_file(path),
                "size": path.stat().st_size,
                "kind": rel.split("/", 1)[0] if "/" in rel else "top",
            }
        )
    return files


def build_bundle(
    out: str | Path,
    *,
    version: str,
    key: str | Path,
    release_notes: str | Path,
    product_wheel: str | Path | None = None,
    source: str | Path | None = None,
    wheels_from: str | Path | None = None,
    lock: str | Path | None = None,
    models: list[Path] | None = None,
    config: str | Path | None = None,
    docs: list[Path] | None = None,
    migrations: list[Path] | None = None,
) -> dict[str, Any]:
    """Build and sign a release bundle in ``out`` (all or nothing); returns the manifest."""
    if not check_version_name(version):
        raise InvalidInputError(
            f"version {version!r} is not MAJOR.MINOR.PATCH",
            where="--version",
            hint="use a version such as 1.4.0 (002 §6.6.1 d)",
        )
    notes = Path(release_notes)
    if not notes.is_file():
        raise InvalidInputError(
            "release notes not found", where=str(notes), hint="release notes are required (002 §6.6.1 e)"
        )
    problems = notes_problems(notes.read_text(encoding="utf-8"), version)
    if problems:
        raise InvalidInputError(
            "release notes incomplete: " + "; ".join(problems),
            where=str(notes),
            hint="name the version and add Changes, Fixes and Dependencies sections",
        )
    with atomic_dir(out) as tmp:
        wheels = tmp / "wheels"
        wheels.mkdir()
        if product_wheel is not None:
            product = Path(product_wheel)
            if not product.is_file():
                raise InvalidInputError("wheel not found", where=str(product), hint="pass a built .whl file")
            shutil.copy2(product, wheels / product.name)
            product = wheels / product.name
        else:
            product = build_product_wheel(Path(source) if source else _project_root(), wheels)
        name, product_version = wheel_identity(product)
        if product_version != version:
            raise InvalidInputError(
                f"the product wheel is version {product_version}, the bundle {version}",
                where=product.name,
                hint="one version across code and bundle (002 §5.5.1 a)",
            )
        if wheels_from is not None:
            for whl in sorted(Path(wheels_from).glob("*.whl")):
                if wheel_identity(whl)[0] != name:
                    shutil.copy2(whl, wheels / whl.name)
        if lock is not None:
            download_locked(Path(lock), wheels)
        lines = []
        packages = {}
        for whl in sorted(wheels.glob("*.whl")):
            dist, ver = wheel_identity(whl)
            packages[dist] = ver
            lines.append(f"{dist}=={ver} --hash=sha256:{sha256_file(whl)}")
        atomic_write_text(tmp / "requirements.lock", "\n".join(lines) + "\n")
        components = [{"name": name, "kind": "code", "version": version}]
        for sub, items, copier in (("models", models, _copy_models), ("docs", docs, _copy_docs)):
            (tmp / sub).mkdir()
            components += copier(list(items or []), tmp / sub, version)
        (tmp / "config").mkdir()
        if config is not None:
            cfg = Path(config)
            if not cfg.is_file():
                raise InvalidInputError("configuration file not found", where=str(cfg), hint="pass aimd.toml")
            shutil.copy2(cfg, tmp / "config" / cfg.name)
            components.append({"name": cfg.name, "kind": "configuration", "version": version})
        (tmp / "migrations").mkdir()
        for mig in sorted(migrations or []):
            shutil.copy2(mig, tmp / "migrations" / Path(mig).name)
        shutil.copy2(notes, tmp / "RELEASE-NOTES.md")
        pub = Path(str(key) + ".pub")
        if not pub.is_file():
            raise InvalidInputError(
                "public key not found next to the signing key", where=str(pub), hint="create keys with `aimd iq keygen`"
            )
        shutil.copy2(pub, tmp / "signing-key.pub")
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": version,
            "product": {"name": name, "wheel": product.name},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "created_by": default_operator(),
            "built_with": {"aimd": __version__, "python": sys.version.split()[0]},
            "signer": fingerprint(pub.read_bytes()),
            "packages": packages,
            "components": components,
            "files": _file_list(tmp),
        }
        atomic_write_json(tmp / "manifest.json", manifest)
        atomic_write_bytes(tmp / "manifest.sig", sign(key, (tmp / "manifest.json").read_bytes()))
    return manifest


def _project_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise InvalidInputError(
            "aimd is not installed from a source tree", where="--source", hint="pass --source or --wheel"
        )
    return root


def bundle_problems(bundle: str | Path, *, public_key: bytes | None = None) -> list[str]:
    """Every integrity problem of a bundle: signature, changed, missing and extra files (empty when sound)."""
    bundle = Path(bundle)
    manifest_path, sig_path = bundle / "manifest.json", bundle / "manifest.sig"
    if not manifest_path.is_file() or not sig_path.is_file():
        return ["manifest.json or manifest.sig missing"]
    key = public_key if public_key is not None else (bundle / "signing-key.pub").read_bytes()
    problems = []
    if not verify(key, manifest_path.read_bytes(), sig_path.read_bytes().strip()):
        problems.append("manifest signature does not verify")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    listed = {f["path"]: f for f in manifest.get("files", [])}
    for rel, entry in listed.items():
        path = bundle / rel
        if not path.is_file():
            problems.append(f"missing file {rel}")
        elif path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"changed file {rel}")
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if rel not in listed and rel not in UNSIGNED:
            problems.append(f"extra file {rel}")
    return problems


def verify_bundle(bundle: str | Path, *, public_key: bytes | None = None) -> dict[str, Any]:
    """The manifest of a sound bundle; :class:`IntegrityError` naming every problem otherwise."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise InvalidInputError("bundle folder not found", where=str(bundle), hint="pass the folder bundle build made")
    problems = bundle_problems(bundle, public_key=public_key)
    if problems:
        raise IntegrityError(
            "; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""),
            where=str(bundle),
            hint="do not install: obtain the bundle again from the provider",
        )
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


__all__ = [
    "BUNDLE_FORMAT",
    "build_bundle",
    "build_product_wheel",
    "bundle_problems",
    "check_version_name",
    "download_locked",
    "notes_problems",
    "verify_bundle",
    "wheel_identity",
]
