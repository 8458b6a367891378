"""Reading the per-case CSV tables that ``aimd metrics cls`` and ``agree`` score.

Both commands take one row per case and named columns (truth, score, one column per rater). The
checks here name the file, the column and the file line of the first bad value, so a user can fix
the table without guessing.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("label,prob\\n1,0.9\\n0,0.2\\n")
>>> df = read_table(path, ["label", "prob"])
>>> numeric_column(df, "prob", path).tolist()
[0.9, 0.2]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.errors import InvalidInputError

__all__ = ["numeric_column", "read_table"]


def read_table(path: Path, columns: Sequence[str]) -> Any:
    """The named ``columns`` of the CSV at ``path`` as a pandas frame; every row complete.

    Raises :class:`~aimd.core.errors.InvalidInputError` for a missing or unreadable file, an unknown
    column (listing the columns the file has), incomplete rows (their file line numbers) and an
    empty table.
    """
    import pandas as pd

    if not path.is_file():
        raise InvalidInputError("file does not exist", where=str(path))
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"cannot read the CSV table: {err}", where=str(path)) from err
    for col in columns:
        if col not in df.columns:
            raise InvalidInputError(
                f"no column {col!r}; columns are {list(df.columns)}",
                where=f"{path}: {col}",
                hint="name an existing column",
            )
    sub = df[list(columns)]
    bad = sub.isna().any(axis=1)
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy()) + 2).tolist()[:10]
        raise InvalidInputError(
            f"missing values in rows {rows} (file line numbers)",
            where=str(path),
            hint="fill or drop incomplete rows",
        )
    if len(sub) == 0:
        raise InvalidInputError("the table has no rows", where=str(path))
    return sub


def numeric_column(df: Any, col: str, path: Path) -> np.ndarray:
    """Column ``col`` of ``df`` as float64; a non-numeric cell is an error naming its file line."""
    import pandas as pd

    values = pd.to_numeric(df[col], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
        raise InvalidInputError(
            f"column {col!r} must be numeric; line {row} holds {df[col].iloc[row - 2]!r}",
            where=f"{path}: {col}",
        )
    return values.to_numpy(dtype=np.float64)
