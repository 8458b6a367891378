"""A CT/MR series from a :class:`~aimd.imaging.volume.Volume`, one file per slice, renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from aimd.core.atomic import atomic_dir
from aimd.core.ids import deterministic_uid, random_uid
from aimd.imaging.dicom_write.encode import (
    _charset,
    _common,
    _content_key,
    _default_mode,
    _ds,
    _element,
    _preamble_and_meta,
    _quantise,
    _series_modality,
    _slice_axes,
    _SliceEncoder,
    _uids,
    _window,
)
from aimd.imaging.dicom_write.meta import _SERIES_SOP, DicomMeta, _log
from aimd.imaging.volume import Volume


def write_dicom_series(
    volume: Volume, out_dir: str | Path, *, meta: DicomMeta | None = None, overwrite: bool = False, fsync: bool = True
) -> list[Path]:
    """Write ``volume`` as a CT or MR DICOM series, one file per slice (``IM00001.dcm`` ...).

    Parameters
    ----------
    volume:
        The image; its LPS geometry becomes Image Position/Orientation (Patient), Pixel Spacing,
        Slice Thickness and Spacing Between Slices. CT values are stored as int16/uint16 with
        Rescale Slope/Intercept chosen so the HU come back exactly (001 §7.2 f).
    out_dir:
        Folder to create; it must not exist or be empty unless ``overwrite``.
    meta:
        Header attributes; default derived from ``volume.modality`` and ``volume.metadata``.
    overwrite:
        Replace an existing non-empty ``out_dir``.
    fsync:
        Flush each file to disk before the folder is renamed into place.

    Returns
    -------
    list[Path]
        The written files in slice order.

    Example
    -------
    >>> import tempfile, pathlib, numpy as np
    >>> vol = Volume(np.zeros((3, 2, 2), np.int16) - 1000, spacing=(1, 1, 2), modality="CT")
    >>> len(write_dicom_series(vol, pathlib.Path(tempfile.mkdtemp()) / "s"))
    3
    """
    out_dir = Path(out_dir)
    meta = meta if meta is not None else DicomMeta.from_volume(volume)
    modality = _series_modality(volume, meta)
    meta = meta.model_copy(update={"modality": modality})
    row, col, normal = _slice_axes(volume)
    stored, slope, intercept = _quantise(volume.array, where=str(out_dir))
    key = _content_key(stored, volume.geometry(), modality, slope, intercept)
    _, study_uid, series_uid, frame_uid = _uids(meta, key)
    charset = _charset(meta)
    sx, sy, sz = volume.spacing
    nz, ny, nx = volume.shape
    center, width = _window(meta, volume.metadata, modality, stored, slope, intercept)

    ds = Dataset()
    _common(ds, meta, modality, _SERIES_SOP[modality], charset, study_uid, series_uid)
    ds.update(
        {  # Frame of Reference, Image Plane, Image Pixel, VOI LUT (001 App. B.1)
            "PatientPosition": "HFS",
            "FrameOfReferenceUID": frame_uid,
            "PositionReferenceIndicator": "",
            "AcquisitionNumber": 1,
            "ImageOrientationPatient": [_ds(v) for v in (*row, *col)],
            "PixelSpacing": [_ds(sy), _ds(sx)],
            "SliceThickness": _ds(meta.slice_thickness or sz),
            "SpacingBetweenSlices": _ds(sz),
            "Rows": ny,
            "Columns": nx,
            "BitsStored": 16,
            "HighBit": 15,
            "PixelRepresentation": 1 if stored.dtype == np.dtype("<i2") else 0,
            "WindowCenter": _ds(center),
            "WindowWidth": _ds(width),
        }
    )
    if not meta.body_part_examined:
        ds.Laterality = ""  # type 2C: the body part might be a paired one
    rescale = {"RescaleIntercept": _ds(intercept), "RescaleSlope": _ds(slope)}
    if modality == "CT":
        ds.update({"KVP": _ds(meta.kvp) if meta.kvp else "", **rescale, "RescaleType": "HU"})
    else:
        ds.update(
            {
                "ScanningSequence": "RM",
                "SequenceVariant": "NONE",
                "ScanOptions": "",
                "MRAcquisitionType": "3D",
                "RepetitionTime": "",
                "EchoTime": "",
                "EchoTrainLength": "",
            }
        )
        if (slope, intercept) != (1.0, 0.0):
            ds.update(rescale)
    tags = [Tag(0x0008, 0x0018), Tag(0x0020, 0x0013), Tag(0x0020, 0x0032), Tag(0x0020, 0x1041)]
    encoder = _SliceEncoder(ds, tags, charset)
    positions = volume.index_to_world(np.stack([np.zeros(nz), np.zeros(nz), np.arange(nz)], axis=1))
    width_digits = max(5, len(str(nz)))
    paths: list[Path] = []
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for k in range(nz):
            sop_uid = random_uid() if meta.random_uids else deterministic_uid(series_uid, "sop", str(k + 1))
            values = {
                tags[0]: _element(tags[0], b"UI", sop_uid),
                tags[1]: _element(tags[1], b"IS", str(k + 1)),
                tags[2]: _element(tags[2], b"DS", "\\".join(_ds(v) for v in positions[k])),
                tags[3]: _element(tags[3], b"DS", _ds(float(positions[k] @ normal))),
            }
            data = encoder.encode(values, stored[k], _preamble_and_meta(_SERIES_SOP[modality], sop_uid))
            name = f"IM{k + 1:0{width_digits}d}.dcm"
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            paths.append(out_dir / name)
        os.chmod(tmp, _default_mode(directory=True))
    _log.debug("dicom_write.series", out=str(out_dir), slices=nz, modality=modality)
    return paths
