"""Readers to compare: one set of packages per annotator (or per version), found in files or a dataset.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.annotation.simulate import simulate_annotators
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> _ = generate_dataset(out, cases=1, seed=4, size=32, workers=1)
>>> _ = simulate_annotators(out, 2, seed=0)
>>> [r.name for r in dataset_readers(out)]
['reader_1', 'reader_2']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aimd.annotation.io import PackageSource, discover_packages, read_sources
from aimd.core.errors import InvalidInputError

__all__ = ["ReaderSet", "dataset_readers", "reader_sets"]


@dataclass(frozen=True)
class ReaderSet:
    """One reader's (or one version's) packages."""

    name: str
    sources: tuple[PackageSource, ...]


def _unique(names: list[str]) -> list[str]:
    out, seen = [], {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}#{seen[n]}")
    return out


def reader_sets(paths: list[str | Path]) -> list[ReaderSet]:
    """One reader per argument: a package file, a JSON Lines file, or a folder of packages."""
    sets = []
    for p in paths:
        files = discover_packages(p)
        if not files:
            raise InvalidInputError("no annotation package found", where=str(p), hint="pass package files or folders")
        sources = tuple(s for f in files for s in read_sources(f))
        annotators = {s.package.metadata.annotator for s in sources}
        sets.append((annotators.pop() if len(annotators) == 1 else Path(p).stem, sources))
    names = [n for n, _ in sets]
    if len(set(names)) < len(names):  # versions by one annotator: name them by path
        names = [Path(p).stem if Path(p).is_file() else Path(p).name for p in paths]
    return [ReaderSet(n, s) for n, (_, s) in zip(_unique(names), sets, strict=True)]


def dataset_readers(dataset_dir: str | Path) -> list[ReaderSet]:
    """Readers of a phantom dataset: ``cases/*/annotations/<reader>.json`` grouped by reader name."""
    root = Path(dataset_dir)
    files = sorted(root.glob("cases/*/annotations/*.json"))
    groups: dict[str, list[PackageSource]] = {}
    for f in files:
        if f.name == "expected.json":
            continue
        groups.setdefault(f.stem, []).extend(read_sources(f))
    if len(groups) < 2:
        raise InvalidInputError(
            f"need at least two readers, found {sorted(groups)}",
            where=str(root),
            hint="run `aimd data phantom OUT --annotators 3` or `aimd annotation simulate`",
        )
    return [ReaderSet(n, tuple(groups[n])) for n in sorted(groups, key=lambda s: (len(s), s))]
