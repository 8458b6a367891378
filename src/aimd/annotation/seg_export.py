"""Masks of a package → one DICOM Segmentation (SEG) referencing the source CT series (highdicom).

Each final mask annotation becomes a BINARY segment; segments may overlap (organs and the lesions
inside them). Property categories and types come from the taxonomy: its SNOMED CT code when it has
one, otherwise the label code under the private scheme ``99AIMD``. Manual annotations are
``MANUAL`` segments, model-corrected ones ``SEMIAUTOMATIC`` with the model named; each segment keeps
the annotation id as tracking id (001 §11.5.1). The masks must lie on the image grid, and every
source DICOM slice must sit on one of its slices.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.annotation.simulate import simulate_annotators
>>> from aimd.annotation.io import read_sources
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> _ = generate_dataset(out, cases=1, seed=5, size=32, workers=1)
>>> pkg = simulate_annotators(out, 1, seed=0)[0]
>>> seg = export_seg(read_sources(pkg)[0], out / "seg.dcm")
>>> seg.Modality, seg.SegmentSequence[0].SegmentLabel
('SEG', 'ORG_BODY BODY')
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from aimd import __version__
from aimd.annotation.io import PackageSource
from aimd.annotation.masks import MaskStore, grid_differences, image_grid
from aimd.annotation.schema import Annotation, AnnotationType, Category, FileRole
from aimd.annotation.taxonomy import Taxonomy, default_taxonomy
from aimd.core.atomic import atomic_file
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.core.ids import deterministic_uid

if TYPE_CHECKING:
    import highdicom as hd

__all__ = ["export_seg", "source_series"]

_PRIVATE_SCHEME = "99AIMD"


def source_series(source: PackageSource) -> list[pydicom.Dataset]:
    """The DICOM slices of the package image (its ``dicom_series`` file reference)."""
    refs = [f for f in source.package.image.files if f.role is FileRole.DICOM_SERIES]
    if not refs:
        raise InvalidInputError(
            "the package image has no DICOM series reference",
            where=source.where,
            hint="DICOM SEG needs the source series: add a file reference with role dicom_series",
        )
    folder = source.resolve(refs[0].path)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    datasets = []
    for p in files:
        try:
            datasets.append(pydicom.dcmread(p))
        except pydicom.errors.InvalidDicomError:
            continue
    if not datasets:
        raise InvalidInputError("no DICOM files in the source series folder", where=str(folder))
    return datasets


def _category(ann: Annotation) -> hd.sr.CodedConcept:
    import highdicom as hd

    if ann.category in (Category.LESION, Category.FEATURE):
        return hd.sr.CodedConcept.from_code(codes.SCT.MorphologicallyAbnormalStructure)
    if ann.category is Category.ORGAN:
        return hd.sr.CodedConcept.from_code(codes.SCT.Organ)
    return hd.sr.CodedConcept.from_code(codes.SCT.AnatomicalStructure)


def _property(ann: Annotation, tax: Taxonomy) -> hd.sr.CodedConcept:
    import highdicom as hd

    node = tax.get(ann.label_code)
    for code in node.codes if node else []:
        if code.system.upper() in ("SNOMED CT", "SCT", "SNOMED"):
            return hd.sr.CodedConcept(value=code.code, scheme_designator="SCT", meaning=code.meaning)
    meaning = node.name_en if node else ann.label_code
    return hd.sr.CodedConcept(value=ann.label_code[:16], scheme_designator=_PRIVATE_SCHEME, meaning=meaning[:64])


def _frame_slices(datasets: list[pydicom.Dataset], source: PackageSource) -> list[int]:
    grid = image_grid(source.package.image)
    out = []
    for ds in datasets:
        ijk = grid.world_to_index(np.asarray(ds.ImagePositionPatient, dtype=np.float64))
        k = int(np.rint(ijk[2]))
        if not (np.allclose(ijk[:2], 0, atol=1e-2) and abs(ijk[2] - k) < 1e-2 and 0 <= k < grid.shape[0]):
            raise GeometryError(
                f"DICOM slice {ds.get('SOPInstanceUID')} is not a slice of the package image grid",
                where=source.where,
                hint="the image geometry must match its DICOM series",
            )
        out.append(k)
    return out


def _person_name(name: str) -> str:
    """A DICOM PN: a single name gets a trailing caret (family name only)."""
    clean = name.replace("\\", " ").strip()[:60] or "unknown"
    return clean if "^" in clean else f"{clean}^"


def export_seg(
    source: PackageSource, out_path: str | Path, *, taxonomy: Taxonomy | None = None, store: MaskStore | None = None
) -> pydicom.Dataset:
    """Write the package's final masks as one DICOM SEG file (atomically) and return the dataset."""
    import highdicom as hd

    tax = taxonomy or default_taxonomy()
    store = store or MaskStore()
    pkg = source.package
    datasets = source_series(source)
    slices = _frame_slices(datasets, source)
    masks, descriptions = [], []
    anns = [
        a
        for a in pkg.annotations
        if a.type is AnnotationType.MASK and a.data.mask_file and (a.image_uid in (None, pkg.image.uid))
    ]
    for ann in anns:
        vol = store.get(source.resolve(ann.data.mask_file or ""), pkg.image)
        if grid_differences(vol, pkg.image):
            raise GeometryError(
                f"mask of {ann.id} is not on the image grid",
                where=source.where,
                hint="run `aimd qc check` and fix the mask geometry first",
            )
        obj = np.asarray(vol.array) == ann.data.mask_value
        if not obj.any():
            continue
        number = len(descriptions) + 1
        assisted = ann.provenance is not None and ann.provenance.source != "manual"
        algo = None
        if assisted:
            model = pkg.metadata.software.ai_model
            algo = hd.AlgorithmIdentificationSequence(
                name=(model.name if model else "unknown model")[:64],
                version=(model.version if model else "?")[:64],
                family=codes.cid7162.ArtificialIntelligence,
            )
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=f"{ann.id} {ann.label_code}"[:64],
                segmented_property_category=_category(ann),
                segmented_property_type=_property(ann, tax),
                algorithm_type=(
                    hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
                    if assisted
                    else hd.seg.SegmentAlgorithmTypeValues.MANUAL
                ),
                algorithm_identification=algo,
                tracking_id=ann.id[:64],
                tracking_uid=deterministic_uid(pkg.task_id, pkg.metadata.annotator, ann.id),
            )
        )
        masks.append(obj[slices])
    if not descriptions:
        raise InvalidInputError("the package has no non-empty mask on its image", where=source.where)
    pixels = np.stack(masks, axis=-1)
    meta = pkg.metadata
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=deterministic_uid(pkg.task_id, meta.annotator, meta.version, "seg-series"),
        series_number=900,
        sop_instance_uid=deterministic_uid(pkg.task_id, meta.annotator, meta.version, "seg"),
        instance_number=1,
        manufacturer="aimd",
        manufacturer_model_name="aimd annotation engine",
        software_versions=__version__,
        device_serial_number="aimd",
        content_label="ANNOTATION",
        content_description=f"{pkg.task_id} {meta.version}"[:64],
        content_creator_name=_person_name(meta.annotator),
    )
    out = Path(out_path)
    with atomic_file(out, suffix=".dcm") as tmp:
        seg.save_as(tmp)
    return seg
