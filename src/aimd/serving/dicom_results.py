"""Results as DICOM: a Segmentation (SEG) and a Comprehensive 3D SR with TID 1500 measurements.

:func:`write_seg` — one binary segment per predicted label, referencing the source series, with the
algorithm identification (model name and version; family: artificial intelligence).
:func:`write_sr` — a TID 1500 measurement report: one volumetric measurement group per finding with
its tracking id, the SEG segment it belongs to, finding site (organ, when known), volume (mm³),
longest diameter (mm), centroid (LPS mm), confidence and confidence grade (003 §5.1), the
algorithm identification and the model as the observing device.
:func:`read_sr_findings` reads those numbers back, so a round trip through a PACS is checkable.

Codes: SNOMED CT and DCM where the concept exists; model-specific concepts (confidence, grade,
centroid axes) under the private coding scheme ``99AIMD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.sr.codedict import codes

from aimd import __version__
from aimd.core.errors import GeometryError
from aimd.core.ids import deterministic_uid
from aimd.imaging.volume import Volume
from aimd.serving.findings import InferenceFinding

_SCHEME = "99AIMD"
_ORGAN_CODES = {
    "lung": ("39607008", "Lung"),
    "liver": ("10200004", "Liver"),
    "kidney": ("64033007", "Kidney"),
    "brain": ("12738006", "Brain"),
}
_GRADES = {"high": "high confidence", "medium": "medium confidence", "review": "manual review recommended"}


@dataclass(frozen=True)
class Algorithm:
    """Who produced a result: model name, version and weights hash."""

    name: str
    version: str
    sha256: str


def _code(value: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=_SCHEME, meaning=meaning)


def sorted_slices(datasets: list[pydicom.Dataset], volume: Volume) -> list[int]:
    """Slice index ``k`` of ``volume`` for each dataset (by ImagePositionPatient)."""
    out = []
    for ds in datasets:
        ijk = volume.world_to_index(np.asarray(ds.ImagePositionPatient, dtype=np.float64))
        k = int(np.rint(ijk[2]))
        if not (abs(ijk[2] - k) < 1e-2 and 0 <= k < volume.shape[0]):
            raise GeometryError(
                f"DICOM slice {ds.get('SOPInstanceUID')} is not a slice of the image grid",
                where="SEG",
                hint="the mask must be on the source series grid",
            )
        out.append(k)
    return out


def write_seg(
    datasets: list[pydicom.Dataset],
    labels: Volume,
    label_names: dict[int, str],
    algorithm: Algorithm,
    *,
    result_id: str,
) -> pydicom.Dataset | None:
    """A DICOM SEG with one binary segment per label present in ``labels``; ``None`` when all are empty."""
    import highdicom as hd

    arr = np.asarray(labels.array)
    slices = sorted_slices(datasets, labels)
    present = [int(v) for v in np.unique(arr) if v != 0]
    if not present:
        return None
    algo = hd.AlgorithmIdentificationSequence(
        name=algorithm.name[:64],
        version=algorithm.version[:64],
        family=codes.cid7162.ArtificialIntelligence,
        parameters={"weights_sha256": algorithm.sha256[:64]},
    )
    descriptions, masks = [], []
    for number, value in enumerate(present, start=1):
        name = label_names.get(value, str(value))
        organ = next((k for k in _ORGAN_CODES if k in name.lower()), None)
        lesion = organ is None or name.lower() != organ
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name[:64],
                segmented_property_category=hd.sr.CodedConcept.from_code(
                    codes.SCT.MorphologicallyAbnormalStructure if lesion else codes.SCT.Organ
                ),
                segmented_property_type=(
                    hd.sr.CodedConcept(_ORGAN_CODES[organ][0], "SCT", _ORGAN_CODES[organ][1])
                    if organ and not lesion
                    else _code(f"L{value}", name[:64])
                ),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algo,
                tracking_id=f"{name} {value}"[:64],
                tracking_uid=deterministic_uid(result_id, "segment", str(value)),
            )
        )
        masks.append((arr == value)[slices])
    return hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=np.stack(masks, axis=-1),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=deterministic_uid(result_id, "seg-series"),
        series_number=901,
        sop_instance_uid=deterministic_uid(result_id, "seg"),
        instance_number=1,
        manufacturer="aimd",
        manufacturer_model_name=f"{algorithm.name} {algorithm.version}"[:64],
        software_versions=__version__,
        device_serial_number=algorithm.sha256[:16],
        content_label="AI_RESULT",
        content_description=f"aimd {algorithm.name} {algorithm.version}"[:64],
        content_creator_name="aimd^device",
    )


def _measure(name: Any, value: float, unit: Any) -> Any:
    import highdicom as hd

    return hd.sr.Measurement(name=name, value=float(value), unit=unit)


def write_sr(
    datasets: list[pydicom.Dataset],
    seg: pydicom.Dataset | None,
    findings: list[InferenceFinding],
    algorithm: Algorithm,
    *,
    result_id: str,
) -> pydicom.Dataset | None:
    """A Comprehensive 3D SR (TID 1500) with one measurement group per finding, referencing ``seg``.

    ``None`` when no finding lies in ``seg``: TID 1500 needs at least one measurement group, so a
    negative study gets no SR (the result document still lists its empty findings).
    """
    import highdicom as hd

    mm, mm3 = hd.sr.CodedConcept("mm", "UCUM", "millimeter"), hd.sr.CodedConcept("mm3", "UCUM", "cubic millimeter")
    ratio = hd.sr.CodedConcept("1", "UCUM", "no units")
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=deterministic_uid("aimd-model", algorithm.name, algorithm.version, algorithm.sha256),
            name=algorithm.name[:64],
            manufacturer_name="aimd",
            model_name=algorithm.version[:64],
            serial_number=algorithm.sha256[:16],
        ),
    )
    algo_id = hd.sr.AlgorithmIdentification(name=algorithm.name[:64], version=algorithm.version[:64])
    segment_of: dict[int, int] = {}
    if seg is not None:
        labels_in_seg = [int(str(s.TrackingID).rsplit(" ", 1)[-1]) for s in seg.SegmentSequence]
        segment_of = {label: number for number, label in enumerate(labels_in_seg, start=1)}
    groups = []
    for f in findings:
        if seg is None or f.label not in segment_of:
            continue
        organ = f.location.organ if f.location else None
        sites = None
        if organ in _ORGAN_CODES:
            code, meaning = _ORGAN_CODES[organ]
            sites = [hd.sr.FindingSite(anatomic_location=hd.sr.CodedConcept(code, "SCT", meaning))]
        x, y, z = f.centroid_lps_mm
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=deterministic_uid(result_id, f.id), identifier=f"{f.id} {f.label_name}"[:64]
                ),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID,
                    sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=segment_of[f.label],
                    source_series=hd.sr.SourceSeriesForSegmentation(datasets[0].SeriesInstanceUID),
                ),
                finding_type=hd.sr.CodedConcept.from_code(codes.SCT.MorphologicallyAbnormalStructure),
                algorithm_id=algo_id,
                finding_sites=sites,
                measurements=[
                    _measure(hd.sr.CodedConcept.from_code(codes.SCT.Volume), f.volume_mm3, mm3),
                    _measure(hd.sr.CodedConcept.from_code(codes.SCT.Diameter), f.longest_diameter_mm, mm),
                    _measure(_code("CENTX", "Centroid x (LPS)"), x, mm),
                    _measure(_code("CENTY", "Centroid y (LPS)"), y, mm),
                    _measure(_code("CENTZ", "Centroid z (LPS)"), z, mm),
                    _measure(_code("CONF", "AI confidence"), f.confidence, ratio),
                ],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=_code("GRADE", "Confidence grade"), value=_code(f.grade.upper(), _GRADES[f.grade])
                    )
                ],
            )
        )
    if not groups:
        return None
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=hd.sr.CodedConcept("25045-6", "LN", "CT unspecified body region")
        if str(datasets[0].Modality) == "CT"
        else hd.sr.CodedConcept("363679005", "SCT", "Imaging"),
        imaging_measurements=groups,
    )
    evidence = [*datasets, *([seg] if seg is not None else [])]
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=deterministic_uid(result_id, "sr-series"),
        series_number=902,
        sop_instance_uid=deterministic_uid(result_id, "sr"),
        instance_number=1,
        manufacturer="aimd",
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
    sr.SeriesDescription = f"AI findings {algorithm.name} {algorithm.version}"[:64]
    return sr


def read_sr_findings(sr: pydicom.Dataset) -> list[dict[str, Any]]:
    """Per measurement group of a TID 1500 SR: tracking id, segment number, measurements and grade."""
    import highdicom as hd

    doc = hd.sr.Comprehensive3DSR.from_dataset(sr) if not isinstance(sr, hd.sr.Comprehensive3DSR) else sr
    out = []
    for group in doc.content.get_volumetric_roi_measurement_groups():
        values = {m.name.meaning: round(float(m.value), 4) for m in group.get_measurements()}
        grades = [q.value.value for q in group.get_qualitative_evaluations()]
        sites = [s.value.meaning for s in group.finding_sites] if group.finding_sites else []
        ref = group.referenced_segment
        out.append(
            {
                "tracking_id": group.tracking_identifier,
                "segment_number": int(ref.referenced_segment_numbers[0]) if ref is not None else None,
                "measurements": values,
                "grade": grades[0].lower() if grades else None,
                "finding_sites": sites,
            }
        )
    return out


def seg_masks(path: str | Path, volume: Volume) -> NDArray[np.uint8]:
    """The label volume of the SEG file at ``path`` on ``volume``'s grid; segment tracking ids give labels."""
    from aimd.imaging.seg_read import place_on_grid, read_seg

    seg = place_on_grid(read_seg(path), volume, where=str(path))
    header = pydicom.dcmread(path, stop_before_pixels=True)
    out = np.zeros(volume.shape, np.uint8)
    for desc in header.SegmentSequence:
        out[np.asarray(seg.array) == int(desc.SegmentNumber)] = int(str(desc.TrackingID).rsplit(" ", 1)[-1])
    return out


__all__ = ["Algorithm", "read_sr_findings", "seg_masks", "sorted_slices", "write_seg", "write_sr"]
