"""Intraclass correlation (001 §9.2 e: continuous attributes such as diameter, volume, SUV).

All six forms from one two-way ANOVA of an ``n targets × k raters`` table, named in both
conventions so a report can state exactly which one it uses:

============  ===================  ==============================================
aimd key      Shrout–Fleiss        McGraw–Wong
============  ===================  ==============================================
``ICC1``      ICC(1,1)             ICC(1): one-way random, single rater
``ICC2``      ICC(2,1)             ICC(A,1): two-way random, absolute agreement
``ICC3``      ICC(3,1)             ICC(C,1): two-way mixed, consistency
``ICC1k``     ICC(1,k)             ICC(k): one-way random, mean of k raters
``ICC2k``     ICC(2,k)             ICC(A,k): two-way random, absolute, mean of k
``ICC3k``     ICC(3,k)             ICC(C,k): two-way mixed, consistency, mean of k
============  ===================  ==============================================

aimd's default for inter-annotator agreement is ``ICC2`` (two-way random effects, absolute
agreement, single rater). F tests use ``MSR/MSW`` (one-way) or ``MSR/MSE`` (two-way); confidence
intervals are the F-based ones of Shrout & Fleiss (1979) / McGraw & Wong (1996), with the
Satterthwaite degrees of freedom for the absolute-agreement forms.

Example
-------
>>> r = icc([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
>>> round(r["ICC1"].value, 3), round(r["ICC2"].value, 3), round(r["ICC3"].value, 3)
(0.166, 0.29, 0.715)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from aimd.core.errors import InvalidInputError

__all__ = ["ICC_FORMS", "IccResult", "icc"]

ICC_FORMS: dict[str, tuple[str, str]] = {
    "ICC1": ("ICC(1,1)", "ICC(1): one-way random effects, single rater"),
    "ICC2": ("ICC(2,1)", "ICC(A,1): two-way random effects, absolute agreement, single rater"),
    "ICC3": ("ICC(3,1)", "ICC(C,1): two-way mixed effects, consistency, single rater"),
    "ICC1k": ("ICC(1,k)", "ICC(k): one-way random effects, mean of k raters"),
    "ICC2k": ("ICC(2,k)", "ICC(A,k): two-way random effects, absolute agreement, mean of k raters"),
    "ICC3k": ("ICC(3,k)", "ICC(C,k): two-way mixed effects, consistency, mean of k raters"),
}


@dataclass(frozen=True)
class IccResult:
    """One ICC form with its F test and confidence interval."""

    form: str
    value: float
    f: float
    df1: float
    df2: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def shrout_fleiss(self) -> str:
        """Shrout–Fleiss name, e.g. ``ICC(2,1)``."""
        return ICC_FORMS[self.form][0]

    @property
    def description(self) -> str:
        """McGraw–Wong name and model."""
        return ICC_FORMS[self.form][1]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "form": self.form,
            "shrout_fleiss": self.shrout_fleiss,
            "description": self.description,
            "icc": self.value,
            "f": self.f,
            "df1": self.df1,
            "df2": self.df2,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
        }


def icc(ratings: ArrayLike, confidence: float = 0.95) -> dict[str, IccResult]:
    """All six ICC forms of an ``n targets × k raters`` table (no missing values).

    Parameters
    ----------
    ratings:
        Rows are the rated targets, columns the raters (``n >= 2``, ``k >= 2``).
    confidence:
        Level of the confidence intervals.

    Examples
    --------
    >>> r = icc([[1.0, 1.1], [2.0, 2.1], [3.0, 2.8], [4.0, 4.2]])
    >>> r["ICC2"].shrout_fleiss, round(r["ICC2"].value, 3)
    ('ICC(2,1)', 0.993)
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InvalidInputError(f"ICC needs a targets × raters table with >= 2 of each, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("ICC ratings hold missing or infinite values", hint="drop incomplete targets")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    n, k = x.shape
    grand = x.mean()
    ss_total = float(np.sum((x - grand) ** 2))
    ss_rows = float(k * np.sum((x.mean(axis=1) - grand) ** 2))
    ss_cols = float(n * np.sum((x.mean(axis=0) - grand) ** 2))
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))
    if msw == 0 or mse == 0:
        raise InvalidInputError("ICC is undefined when raters agree exactly on every target (no error variance)")

    q = 1 - (1 - confidence) / 2
    df1, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1, f3 = msr / msw, msr / mse
    f1_lo, f1_hi = f1 / stats.f.ppf(q, df1, df_w), f1 * stats.f.ppf(q, df_w, df1)
    f3_lo, f3_hi = f3 / stats.f.ppf(q, df1, df_e), f3 * stats.f.ppf(q, df_e, df1)

    icc1 = (msr - msw) / (msr + (k - 1) * msw)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    icc1k = (msr - msw) / msr
    icc2k = (msr - mse) / (msr + (msc - mse) / n)
    icc3k = (msr - mse) / msr

    # Satterthwaite degrees of freedom for the absolute-agreement interval (Shrout & Fleiss 1979)
    fj = msc / mse
    base = n * (1 + (k - 1) * icc2) - k * icc2
    v = (k - 1) * (n - 1) * (k * icc2 * fj + base) ** 2 / ((n - 1) * k**2 * icc2**2 * fj**2 + base**2)
    fs_hi, fs_lo = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
    spread = k * msc + (k * n - k - n) * mse
    a_lo = n * (msr - fs_hi * mse) / (fs_hi * spread + n * msr)
    a_hi = n * (fs_lo * msr - mse) / (spread + n * fs_lo * msr)

    def make(form: str, value: float, f: float, d2: float, lo: float, hi: float) -> IccResult:
        return IccResult(
            form,
            float(value),
            float(f),
            float(df1),
            float(d2),
            float(stats.f.sf(f, df1, d2)),
            float(lo),
            float(hi),
            confidence,
        )

    return {
        "ICC1": make("ICC1", icc1, f1, df_w, (f1_lo - 1) / (f1_lo + k - 1), (f1_hi - 1) / (f1_hi + k - 1)),
        "ICC2": make("ICC2", icc2, f3, df_e, a_lo, a_hi),
        "ICC3": make("ICC3", icc3, f3, df_e, (f3_lo - 1) / (f3_lo + k - 1), (f3_hi - 1) / (f3_hi + k - 1)),
        "ICC1k": make("ICC1k", icc1k, f1, df_w, 1 - 1 / f1_lo, 1 - 1 / f1_hi),
        "ICC2k": make("ICC2k", icc2k, f3, df_e, k * a_lo / (1 + (k - 1) * a_lo), k * a_hi / (1 + (k - 1) * a_hi)),
        "ICC3k": make("ICC3k", icc3k, f3, df_e, 1 - 1 / f3_lo, 1 - 1 / f3_hi),
    }
