"""docs/traceability.md stays true: every module and test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\|\s*(?P<clause>[^|]+?)\s*\|\s*(?P<feature>[^|]+?)\s*\|\s*(?P<module>[^|]+?)\s*\|"
    r"\s*(?P<tests>[^|]+?)\s*\|"
)


def _rows() -> list[dict[str, str]]:
    text = (ROOT / "docs" / "traceability.md").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m and not set(m["clause"]) <= set("-: ") and m["clause"].lower() != "clause":
            rows.append(m.groupdict())
    return rows


def _module_path(dotted: str) -> Path:
    base = ROOT / "src" / Path(*dotted.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def test_table_is_not_empty() -> None:
    assert len(_rows()) >= 10


def test_every_module_and_test_exists() -> None:
    problems = []
    for row in _rows():
        for module in re.findall(r"`(aimd[\w.]*)`", row["module"]):
            if not _module_path(module).exists():
                problems.append(f"{row['clause']}: module {module} missing")
        tests = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", row["tests"])
        if not tests:
            problems.append(f"{row['clause']}: no test named")
        for path, func in tests:
            file = ROOT / path
            if not file.exists():
                problems.append(f"{row['clause']}: {path} missing")
            elif func and not re.search(rf"def {func}\b|class {func}\b", file.read_text(encoding="utf-8")):
                problems.append(f"{row['clause']}: {path}::{func} missing")
    assert not problems, "\n".join(problems)
