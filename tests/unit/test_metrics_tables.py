"""The CSV tables ``aimd metrics cls`` / ``agree`` read: good tables load, bad ones name the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aimd.core.errors import InvalidInputError
from aimd.metrics.tables import numeric_column, read_table


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_named_columns_in_file_order(tmp_path: Path) -> None:
    path = _csv(tmp_path, "case,label,prob\na,1,0.75\nb,0,0.25\n")
    df = read_table(path, ["prob", "label"])
    assert list(df.columns) == ["prob", "label"]
    np.testing.assert_array_equal(numeric_column(df, "prob", path), [0.75, 0.25])


@pytest.mark.parametrize(
    ("text", "columns", "needle"),
    [
        ("label,prob\n1,0.5\n", ["score"], "no column 'score'"),
        ("label,prob\n1,0.5\n0,\n", ["label", "prob"], "missing values in rows [3]"),
        ("label,prob\n", ["label", "prob"], "no rows"),
        ("", ["label"], "cannot read the CSV table"),
    ],
)
def test_bad_tables_name_the_problem(tmp_path: Path, text: str, columns: list[str], needle: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(InvalidInputError, match=None) as err:
        read_table(path, columns)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_table(tmp_path / "absent.csv", ["label"])


def test_non_numeric_cell_names_its_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, "label,prob\n1,0.5\n0,high\n")
    df = read_table(path, ["label", "prob"])
    with pytest.raises(InvalidInputError, match="line 3 holds 'high'"):
        numeric_column(df, "prob", path)
