"""A DX/CR radiograph from a 2-D image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aimd.core.atomic import atomic_write_bytes
from aimd.core.errors import InvalidInputError
from aimd.core.ids import deterministic_uid, random_uid
from aimd.imaging.dicom_write.encode import (
    _charset,
    _code,
    _common,
    _content_key,
    _default_mode,
    _ds,
    _encode,
    _pixel_element,
    _preamble_and_meta,
    _uids,
    _window,
)
from aimd.imaging.dicom_write.meta import _IMAGE_SOP, _REGION_CODES, _VIEW_CODES, DicomMeta, _log


def write_dicom_image(
    image2d: ArrayLike,
    out_path: str | Path,
    *,
    pixel_spacing: tuple[float, float],
    meta: DicomMeta | None = None,
    modality: str = "DX",
    view_position: str = "AP",
    patient_orientation: tuple[str, str] = ("L", "F"),
    overwrite: bool = False,
) -> Path:
    """Write a projection radiograph: Digital X-Ray Image Storage — For Presentation (or CR).

    Parameters
    ----------
    image2d:
        ``(rows, columns)`` unsigned integer values (0–65535), higher = more attenuation
        (MONOCHROME2, Pixel Intensity Relationship LOG).
    out_path:
        File to write atomically; must not exist unless ``overwrite``.
    pixel_spacing:
        ``(row spacing, column spacing)`` in mm at the detector, DICOM order; written as
        Imager Pixel Spacing (and Pixel Spacing).
    meta:
        Header attributes; ``DicomMeta()`` when omitted.
    modality:
        ``"DX"`` (default) or ``"CR"``.
    view_position, patient_orientation:
        View Position (``AP``/``PA``/``LL``) and the patient directions of the column and row axes.

    Example
    -------
    >>> import tempfile, pathlib, numpy as np
    >>> img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    >>> write_dicom_image(img, pathlib.Path(tempfile.mkdtemp()) / "dx.dcm", pixel_spacing=(0.2, 0.2)).name
    'dx.dcm'
    """
    out_path = Path(out_path)
    meta = meta if meta is not None else DicomMeta()
    modality = modality.upper()
    if modality not in _IMAGE_SOP:
        raise InvalidInputError(f"modality must be 'DX' or 'CR', got {modality!r}", where=str(out_path))
    img = np.asarray(image2d)
    if img.ndim != 2 or min(img.shape) < 1:
        raise InvalidInputError(
            f"a radiograph needs a 2-D (rows, columns) array, got shape {img.shape}", where=str(out_path)
        )
    if (
        img.dtype.kind not in "iuf"
        or not np.isfinite(img).all()
        or not np.array_equal(img, np.round(img))
        or img.min() < 0
        or img.max() > 65535
    ):
        raise InvalidInputError(
            f"radiograph pixels must be integers in [0, 65535], got dtype {img.dtype} range [{img.min()}, {img.max()}]",
            where=str(out_path),
            hint="scale and round the image to unsigned integers (e.g. 12-bit) first",
        )
    if len(pixel_spacing) != 2 or min(pixel_spacing) <= 0:
        raise InvalidInputError(f"pixel_spacing needs two values > 0 mm, got {pixel_spacing}", where=str(out_path))
    if out_path.exists() and not overwrite:
        raise InvalidInputError(
            "output file already exists", where=str(out_path), hint="choose a new path or pass overwrite=True"
        )
    stored = img.astype("<u2")
    meta = meta.model_copy(update={"modality": modality})
    seed, study_uid, series_uid, _ = _uids(meta, _content_key(stored, tuple(pixel_spacing), modality))
    sop_uid = random_uid() if meta.random_uids else deterministic_uid(series_uid, "sop", "1")
    charset = _charset(meta)
    bits = max(12, int(stored.max()).bit_length())

    center, width = _window(meta, {}, modality, stored[None], 1.0, 0.0)
    ds = Dataset()
    _common(ds, meta, modality, _IMAGE_SOP[modality], charset, study_uid, series_uid)
    ds.update(
        {
            "SOPInstanceUID": sop_uid,
            "InstanceNumber": 1,
            "PatientOrientation": list(patient_orientation),
            "ViewPosition": view_position,
            "Rows": stored.shape[0],
            "Columns": stored.shape[1],
            "BitsStored": bits,
            "HighBit": bits - 1,
            "PixelRepresentation": 0,
            "ImagerPixelSpacing": [_ds(v) for v in pixel_spacing],
            "PixelSpacing": [_ds(v) for v in pixel_spacing],
            "PixelSpacingCalibrationType": "GEOMETRY",
            "PixelSpacingCalibrationDescription": "parallel projection, magnification 1",
            "EstimatedRadiographicMagnificationFactor": "1",
            "BurnedInAnnotation": "NO",
            "WindowCenter": _ds(meta.window_center if meta.window_center is not None else center),
            "WindowWidth": _ds(meta.window_width if meta.window_width is not None else width),
        }
    )
    if meta.kvp:
        ds.KVP = _ds(meta.kvp)
    if modality == "DX":  # DX Series, DX Image, DX Detector, DX Positioning modules
        view = _VIEW_CODES.get(view_position.upper())
        ds.update(
            {
                "PresentationIntentType": "FOR PRESENTATION",
                "ImageLaterality": "U",
                "PixelIntensityRelationship": "LOG",
                "PixelIntensityRelationshipSign": 1,
                "RescaleIntercept": "0",
                "RescaleSlope": "1",
                "RescaleType": "US",
                "PresentationLUTShape": "IDENTITY",
                "LossyImageCompression": "00",
                "DetectorType": "DIRECT",
                "AcquisitionContextSequence": Sequence(),
                "PositionerType": "NONE",
                "ViewCodeSequence": Sequence([_code(*view)] if view else []),
            }
        )
    region = _REGION_CODES.get(meta.body_part_examined.upper())
    ds.AnatomicRegionSequence = Sequence([_code(*region)] if region else [])
    body = _encode(ds, charset)
    data = _preamble_and_meta(_IMAGE_SOP[modality], sop_uid) + body + _pixel_element(stored)
    atomic_write_bytes(out_path, data)
    os.chmod(out_path, _default_mode(directory=False))
    _log.debug("dicom_write.image", out=str(out_path), modality=modality, seed=seed)
    return out_path
