"""One entry point for image input and output, dispatched by path (001 §7.2 a).

* a folder → a DICOM series (``series_uid`` picks one when the folder holds several);
* ``.nii`` / ``.nii.gz`` → NIfTI;
* any other file → a DICOM file (2-D image or multi-frame); a file that is neither DICOM nor
  NIfTI is an :class:`InvalidInputError` naming the supported formats.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> vol = read_volume(get_testdata_file("MR_small.dcm"))
>>> vol.modality, vol.shape
('MR', (1, 64, 64))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aimd.core.errors import InvalidInputError
from aimd.imaging.dicom_headers import NON_DICOM_SUFFIXES, SeriesInfo
from aimd.imaging.dicom_read import list_dicom_series, read_dicom_file, read_dicom_series
from aimd.imaging.nifti_io import is_nifti_path, read_nifti, write_nifti
from aimd.imaging.volume import Volume

SUPPORTED = "a DICOM series folder, a DICOM file, or a NIfTI .nii/.nii.gz file"


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("path does not exist", where=str(p), hint=f"pass {SUPPORTED}")
    return p


def _check_not_other_format(p: Path) -> None:
    if p.suffix.lower() in NON_DICOM_SUFFIXES:
        raise InvalidInputError(f"unknown image format {p.suffix!r}", where=str(p), hint=f"pass {SUPPORTED}")


def read_volume(
    path: str | Path, series_uid: str | None = None, *, on_file: Callable[[], None] | None = None
) -> Volume:
    """Read a DICOM series folder, a DICOM file or a NIfTI file into a :class:`Volume` (LPS mm).

    Parameters
    ----------
    path:
        Folder (DICOM series, searched recursively), DICOM file, or ``.nii``/``.nii.gz`` file.
    series_uid:
        SeriesInstanceUID to read from a folder holding several series. Without it such a folder
        is an :class:`InvalidInputError` listing the uids.
    on_file:
        Progress callback, called once per file read.

    Example
    -------
    >>> from nibabel.testing import data_path
    >>> read_volume(f"{data_path}/anatomical.nii").spacing
    (2.0, 2.0, 2.0)
    """
    p = _existing(path)
    if p.is_dir():
        return read_dicom_series(p, series_uid, on_file=on_file)
    if is_nifti_path(p):
        return read_nifti(p)
    _check_not_other_format(p)
    vol = read_dicom_file(p)
    if series_uid is not None and vol.metadata.get("series_uid") != series_uid:
        found = vol.metadata.get("series_uid")
        raise InvalidInputError(
            f"file belongs to series {found!r}, not {series_uid!r}",
            where=str(p),
            hint="drop --series or pass the right file",
        )
    return vol


def list_series(path: str | Path) -> list[SeriesInfo]:
    """The image series at ``path``: uid, modality, description, n_files, shape (z, y, x).

    A NIfTI file is listed as one series with an empty uid.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> [s.modality for s in list_series(get_testdata_file("CT_small.dcm"))]
    ['CT']
    """
    p = _existing(path)
    if p.is_file() and is_nifti_path(p):
        vol = read_nifti(p)
        return [
            SeriesInfo(
                uid="", modality=vol.modality or "", description=p.name, n_files=1, shape=vol.shape, files=(str(p),)
            )
        ]
    if p.is_file():
        _check_not_other_format(p)
    return list_dicom_series(p)


def write_volume(volume: Volume, path: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``volume`` as NIfTI (path ending ``.nii``/``.nii.gz``) or as a DICOM series folder.

    Nothing is half-written: NIfTI goes through a temporary file, the DICOM series through a
    temporary folder renamed into place. An existing output is refused unless ``overwrite``.
    Returns the files written.

    Example
    -------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> [p.name for p in write_volume(Volume(np.zeros((2, 2, 2), np.int16)), out)]
    ['a.nii.gz']
    """
    p = Path(path)
    if is_nifti_path(p):
        if p.exists() and not overwrite:
            raise InvalidInputError(
                "output already exists", where=str(p), hint="choose another path or allow overwriting (--force)"
            )
        if p.is_dir():
            raise InvalidInputError(
                "output is a folder, a .nii/.nii.gz file is expected", where=str(p), hint="choose a file path"
            )
        write_nifti(volume, p)
        return [p]
    if p.exists() and p.is_file():
        raise InvalidInputError(
            "DICOM output must be a folder but a file exists there",
            where=str(p),
            hint="choose a folder path, or end the path in .nii.gz for NIfTI",
        )
    if p.suffix and p.suffix.lower() in NON_DICOM_SUFFIXES:
        raise InvalidInputError(
            f"unknown output format {p.suffix!r}",
            where=str(p),
            hint="end the path in .nii or .nii.gz for NIfTI, or give a folder for DICOM",
        )
    if p.exists() and any(p.iterdir()) and not overwrite:
        raise InvalidInputError(
            "output folder already exists and is not empty",
            where=str(p),
            hint="choose a new folder or allow overwriting (--force)",
        )
    from aimd.imaging.dicom_write import write_dicom_series  # written alongside; imported when needed

    return write_dicom_series(volume, p, overwrite=overwrite)


__all__ = ["SUPPORTED", "list_series", "read_volume", "write_volume"]
