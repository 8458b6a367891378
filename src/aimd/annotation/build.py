"""Start packages from image files: image references with relative paths, masks on the image grid.

The browser platform and scripts create packages the same way: :func:`image_ref_for` reads an image
(DICOM series folder, DICOM file or NIfTI) and describes it (uid, modality, geometry, file reference
relative to the package's folder); :func:`new_package` starts an empty package for it;
:func:`write_mask` writes a label array as NIfTI on the image grid.

Example
-------
>>> import tempfile, pathlib, numpy as np
>>> from aimd.imaging.volume import Volume
>>> from aimd.imaging.nifti_io import write_nifti
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> write_nifti(Volume(np.zeros((4, 8, 8), np.int16), spacing=(0.8, 0.8, 2.0), modality="CT"), root / "ct.nii.gz")
>>> pkg = new_package(root / "ct.nii.gz", root / "ann" / "p.json", task_id="T1", annotator="a")
>>> pkg.image.shape, pkg.image.files[0].path
((8, 8, 4), '../ct.nii.gz')
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from aimd.annotation.masks import image_grid, ref_from_volume
from aimd.annotation.schema import AnnotationPackage, FileRef, FileRole, ImageRef, Metadata, TaxonomyRef
from aimd.annotation.taxonomy import Taxonomy, default_taxonomy
from aimd.core.errors import GeometryError
from aimd.imaging.io import read_volume
from aimd.imaging.nifti_io import write_nifti

__all__ = ["image_ref_for", "new_package", "relative_ref", "write_mask"]


def relative_ref(target: str | Path, package_path: str | Path) -> str:
    """POSIX path of ``target`` relative to the folder of ``package_path``."""
    return os.path.relpath(Path(target).resolve(), Path(package_path).resolve().parent).replace(os.sep, "/")


def image_ref_for(
    image_path: str | Path, package_path: str | Path, *, uid: str | None = None, **extra: Any
) -> ImageRef:
    """Describe an image file for a package stored at ``package_path``."""
    p = Path(image_path)
    vol = read_volume(p)
    role = FileRole.DICOM_SERIES if p.is_dir() else FileRole.IMAGE
    ref_uid = uid or str(vol.metadata.get("series_uid") or p.name)
    meta = {k: vol.metadata.get(k) for k in ("study_uid", "series_uid", "frame_of_reference_uid")}
    fields = {
        "study_uid": meta["study_uid"],
        "series_uid": meta["series_uid"],
        "frame_of_reference_uid": meta["frame_of_reference_uid"],
        **extra,
    }
    return ref_from_volume(
        vol,
        ref_uid,
        files=[FileRef(path=relative_ref(p, package_path), role=role)],
        **{k: v for k, v in fields.items() if v is not None},
    )


def new_package(
    image_path: str | Path,
    package_path: str | Path,
    *,
    task_id: str,
    annotator: str,
    version: str = "v1.0",
    taxonomy: Taxonomy | None = None,
    **image_fields: Any,
) -> AnnotationPackage:
    """An empty package for one image, with the taxonomy named and the start time set."""
    tax = taxonomy or default_taxonomy()
    return AnnotationPackage(
        task_id=task_id,
        image=image_ref_for(image_path, package_path, **image_fields),
        metadata=Metadata(
            annotator=annotator,
            version=version,
            taxonomy=TaxonomyRef(name=tax.name, version=tax.version),
            timestamps={"start": dt.datetime.now(dt.UTC)},
        ),
    )


def write_mask(image: ImageRef, labels: ArrayLike, path: str | Path) -> None:
    """Write a ``(z, y, x)`` label array as NIfTI on the grid of ``image`` (atomically)."""
    arr = np.asarray(labels)
    grid = image_grid(image)
    if arr.shape != grid.shape:
        raise GeometryError(
            f"mask shape {arr.shape} differs from the image grid {grid.shape} (z, y, x)",
            where=str(path),
            hint="draw the mask on the image grid",
        )
    dtype = np.uint8 if arr.dtype == bool or (arr.size and arr.max() < 256 and arr.min() >= 0) else arr.dtype
    write_nifti(grid.with_array(arr.astype(dtype)), path)
