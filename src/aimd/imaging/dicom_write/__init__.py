"""DICOM writers: a CT/MR series from a :class:`Volume`, a DX/CR radiograph from a 2-D image.

The files carry the full spatial header that 001 §7.2 b–e and App. B.1 ask for (Image Position /
Orientation (Patient), Pixel Spacing, Slice Thickness, Spacing Between Slices, Frame of Reference
UID) and store CT values with Rescale Slope/Intercept so Hounsfield units come back exactly (001
§7.2 f). Output is deterministic: UIDs derive from :class:`DicomMeta` (or from the pixel data and
geometry when no seed is given) and no "now" timestamps are written, so the same input gives
byte-identical files. A series is built in a temporary folder and renamed into place.

Modules: :mod:`~aimd.imaging.dicom_write.meta` (:class:`DicomMeta`), :mod:`~aimd.imaging.dicom_write.encode`
(encoding helpers), :mod:`~aimd.imaging.dicom_write.series` (CT/MR series), :mod:`~aimd.imaging.dicom_write.image`
(DX/CR radiographs).

Example
-------
>>> import tempfile, pathlib, numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.full((2, 4, 4), -1000, np.int16), spacing=(0.8, 0.8, 2.5), modality="CT")
>>> paths = write_dicom_series(vol, pathlib.Path(tempfile.mkdtemp()) / "ct")
>>> [p.name for p in paths]
['IM00001.dcm', 'IM00002.dcm']
"""

from aimd.imaging.dicom_write.image import write_dicom_image
from aimd.imaging.dicom_write.meta import DicomMeta
from aimd.imaging.dicom_write.series import write_dicom_series

__all__ = ["DicomMeta", "write_dicom_image", "write_dicom_series"]
