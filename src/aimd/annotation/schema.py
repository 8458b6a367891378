"""Pydantic models of an annotation package (001 §6.6, App. B.3, App. C).

An :class:`AnnotationPackage` is one annotator's (or one version's) annotations of one image:

* ``task_id`` and ``image`` (uid, modality, shape, spacing, origin, direction, file references — App. C.2);
* ``annotations[]`` — id, category, label_code, type and a ``data`` payload (mask_file | bbox |
  polygon + slice_index | point | attributes) with ``cross_modal_links[]`` (App. C.3);
* ``texts[]`` — report text with spans of semantic type finding / diagnosis / attribute /
  recommendation (001 §8.5.2.2);
* ``structured_fields[]`` — typed clinical fields with units, normal ranges, timestamps and the
  time-deviation label (001 §8.5.3);
* ``registrations[]`` — transform file, algorithm and version, error (001 §8.5.1.2, §8.5.1.4);
* ``metadata`` — annotator, reviewer, institution, software (+ AI model), timestamps, QC status,
  version and audit trail (App. C.4, 001 §11.5).

Coordinates: ``image.shape``, ``spacing`` and ``origin`` are in ``(x, y, z)`` order (columns, rows,
slices — as the App. C.5 example and SimpleITK's ``GetSize``); ``direction`` is a 3×3 matrix whose
columns are the LPS directions of the x, y and z index axes. Boxes, polygons and points are in
continuous voxel-edge coordinates: voxel ``(i, j, k)`` covers ``[i, i+1) × [j, j+1) × [k, k+1)``
(the COCO pixel convention). File paths are POSIX paths relative to the package file's folder.

Unknown fields are rejected everywhere; the JSON Schema comes from these models
(:func:`package_json_schema`), never written by hand.

Example
-------
>>> pkg = AnnotationPackage.model_validate({
...     "task_id": "TASK_CT_LUNG_000001",
...     "image": {"uid": "1.2.3", "modality": "CT", "shape": [64, 64, 40],
...               "spacing": [0.8, 0.8, 1.25], "origin": [0, 0, 0]},
...     "annotations": [{"id": "LESION_01", "category": "lesion", "label_code": "LUNG_NODULE",
...                      "type": "bbox", "bbox": [10, 12, 5, 16, 18, 9],
...                      "cross_modal_links": ["TXT_SPAN_01"]}],
...     "metadata": {"annotator": "doctor_A", "version": "v1.0"}})
>>> pkg.annotations[0].data.bbox, pkg.annotations[0].cross_modal_links[0].target
([10.0, 12.0, 5.0, 16.0, 18.0, 9.0], 'TXT_SPAN_01')
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aimd.annotation.schema_base import (
    AnnotationType,
    Category,
    FieldType,
    FileRole,
    LinkKind,
    LinkStatus,
    SchemaModel,
    SemanticType,
)
from aimd.annotation.schema_records import (
    NormalRange,
    Registration,
    RegistrationAccuracy,
    StructuredField,
    TextDocument,
    TextSpan,
)

SCHEMA_VERSION = "1.0"

__all__ = [
    "SCHEMA_VERSION",
    "AIModel",
    "Annotation",
    "AnnotationData",
    "AnnotationPackage",
    "AnnotationType",
    "AuditEntry",
    "Category",
    "CrossModalLink",
    "FieldType",
    "FileRef",
    "FileRole",
    "ImageRef",
    "LinkKind",
    "LinkStatus",
    "Metadata",
    "ModelAssistance",
    "NormalRange",
    "Provenance",
    "QCState",
    "Registration",
    "RegistrationAccuracy",
    "SemanticType",
    "Software",
    "StructuredField",
    "TaxonomyRef",
    "TemplateRef",
    "TextDocument",
    "TextSpan",
    "Timestamps",
    "package_json_schema",
]


# ---------------------------------------------------------------------------------------------- image
class FileRef(SchemaModel):
    """A file the package uses, relative to the package file's folder."""

    path: str = Field(min_length=1, description="POSIX path relative to the package file's folder")
    role: FileRole = FileRole.OTHER
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="expected SHA-256, if known")
    description: str = ""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or "\\" in value or ":" in value.split("/")[0]:
            raise ValueError(f"file paths must be relative POSIX paths, got {value!r}")
        return value


def _direction_3x3(value: Any) -> Any:
    if isinstance(value, list | tuple) and len(value) == 9 and not isinstance(value[0], list | tuple):
        return [list(value[0:3]), list(value[3:6]), list(value[6:9])]
    return value


class ImageRef(SchemaModel):
    """The annotated image (001 App. C.2 b, App. B): identity, geometry and files."""

    uid: str = Field(min_length=1, description="image identifier: series instance UID or file id")
    modality: str = Field(min_length=1)
    shape: tuple[int, int, int] = Field(description="grid size in (x, y, z) order; 2-D images have z = 1")
    spacing: tuple[float, float, float] = Field(description="voxel size in mm, (x, y, z)")
    origin: tuple[float, float, float] = Field(description="LPS position of voxel (0, 0, 0) in mm")
    direction: list[list[float]] = Field(
        default_factory=lambda: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        description="3×3, columns are the LPS directions of the x, y, z axes (row-major 9 values accepted)",
    )
    files: list[FileRef] = Field(default_factory=list, description="image files (NIfTI, DICOM series folder)")
    case_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None
    acquired: dt.datetime | dt.date | None = Field(None, description="acquisition time (001 §8.5.3.4)")

    @field_validator("direction", mode="before")
    @classmethod
    def _flat_direction(cls, value: Any) -> Any:
        return _direction_3x3(value)

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value) < 1:
            raise ValueError(f"shape values must be >= 1, got {list(value)}")
        return value

    @field_validator("spacing")
    @classmethod
    def _positive_spacing(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0:
            raise ValueError(f"spacing must be > 0 mm, got {list(value)}")
        return value

    @field_validator("direction")
    @classmethod
    def _square(cls, value: list[list[float]]) -> list[list[float]]:
        if len(value) != 3 or any(len(row) != 3 for row in value):
            raise ValueError("direction must be a 3×3 matrix (or 9 row-major values)")
        return value


# ---------------------------------------------------------------------------------------- annotations
class AnnotationData(SchemaModel):
    """Geometry or attribute payload of one annotation (001 App. C.3 e)."""

    mask_file: str | None = Field(None, description="mask file (NIfTI or DICOM SEG) on the image grid")
    mask_value: int = Field(1, ge=1, description="voxel value of this object in mask_file")
    bbox: list[float] | None = Field(None, description="[x0, y0, x1, y1] or [x0, y0, z0, x1, y1, z1]")
    polygon: list[tuple[float, float]] | None = Field(None, description="[[x, y], ...] on slice_index")
    slice_index: int | None = Field(None, ge=0, description="z index of a 2-D polygon or box")
    point: list[float] | None = Field(None, description="[x, y] or [x, y, z]")
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("bbox")
    @classmethod
    def _bbox_len(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) not in (4, 6):
            raise ValueError(f"bbox needs 4 (2-D) or 6 (3-D) numbers, got {len(value)}")
        return value

    @field_validator("point")
    @classmethod
    def _point_len(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) not in (2, 3):
            raise ValueError(f"point needs 2 or 3 coordinates, got {len(value)}")
        return value

    @field_validator("polygon")
    @classmethod
    def _polygon_len(cls, value: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if value is not None and len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 vertices, got {len(value)}")
        return value


_PAYLOAD_KEYS = ("mask_file", "mask_value", "bbox", "polygon", "slice_index", "point", "attributes")
_REQUIRED_PAYLOAD = {
    "mask": "mask_file",
    "bbox": "bbox",
    "polygon": "polygon",
    "point": "point",
    "attribute": "attributes",
}


class CrossModalLink(SchemaModel):
    """A link from an annotation to another annotation, a text span or a structured field (App. C.3)."""

    target: str = Field(min_length=1, description="id of the linked annotation, text span or field")
    kind: LinkKind | None = Field(None, description="inferred from the target when omitted")
    status: LinkStatus = LinkStatus.UNCHECKED
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_id(cls, value: Any) -> Any:
        return {"target": value} if isinstance(value, str) else value


class Provenance(SchemaModel):
    """Where an annotation came from: manual, a model, or a model suggestion corrected by hand (§6.4.2)."""

    source: Literal["manual", "model", "model_corrected"] = "manual"
    model: str | None = Field(None, description="model name and version that suggested it")
    initial: AnnotationData | None = Field(None, description="the model's suggestion before correction")
    initial_label_code: str | None = None


class Annotation(SchemaModel):
    """One annotation object (001 App. C.3)."""

    id: str = Field(min_length=1)
    category: Category
    label_code: str = Field(min_length=1)
    type: AnnotationType
    data: AnnotationData = Field(default_factory=AnnotationData)
    image_uid: str | None = Field(None, description="image the object is on; default the package image")
    cross_modal_links: list[CrossModalLink] = Field(default_factory=list)
    provenance: Provenance | None = None
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _lift_payload(cls, value: Any) -> Any:
        """Accept the App. C.5 form with ``mask_file``/``bbox``/... beside ``type``."""
        if not isinstance(value, dict) or not any(k in value for k in _PAYLOAD_KEYS):
            return value
        value = dict(value)
        data = dict(value.get("data") or {})
        for key in _PAYLOAD_KEYS:
            if key in value:
                if key in data:
                    raise ValueError(f"{key!r} is given both at the top level and under 'data'")
                data[key] = value.pop(key)
        value["data"] = data
        return value

    @model_validator(mode="after")
    def _payload_matches_type(self) -> Annotation:
        needed = _REQUIRED_PAYLOAD[self.type.value]
        payload = getattr(self.data, needed)
        if payload is None or (needed == "attributes" and not payload):
            raise ValueError(f"annotation {self.id!r} of type {self.type.value!r} needs data.{needed}")
        if self.type is AnnotationType.POLYGON and self.data.slice_index is None:
            raise ValueError(f"polygon annotation {self.id!r} needs data.slice_index")
        return self


# ---------------------------------------------------------------------------------------------- metadata
class AIModel(SchemaModel):
    """A model used for model-assisted labelling (001 §10.1.6, App. C.4 b)."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)


class Software(SchemaModel):
    """Annotation software (App. C.4 b)."""

    name: str = "aimd"
    version: str = ""
    ai_model: AIModel | None = None


class Timestamps(SchemaModel):
    """Start and end of the annotation work (App. C.4 c)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None


class QCState(SchemaModel):
    """QC status and issues (App. C.4 d)."""

    status: Literal["pending", "passed", "failed", "forced"] = "pending"
    issues: list[str] = Field(default_factory=list)
    checked: dt.datetime | None = None


class AuditEntry(SchemaModel):
    """One key operation (App. C.4 f): create, model suggestion, manual revision, review, export ...

    ``sha256`` chains the entries: it hashes this entry's content with the previous entry's hash, so a
    changed, removed or reordered entry is detected (001 §11.5.1).
    """

    timestamp: dt.datetime
    actor: str = Field(min_length=1)
    action: str = Field(min_length=1)
    detail: str = ""
    annotation_ids: list[str] = Field(default_factory=list)
    prev_sha256: str | None = None
    sha256: str | None = None


class ModelAssistance(SchemaModel):
    """Model suggestions the annotator rejected (over-labelled regions, 001 §9.1.1 note 1)."""

    rejected: list[Annotation] = Field(default_factory=list)


class TaxonomyRef(SchemaModel):
    """Taxonomy the labels come from."""

    name: str
    version: str


class TemplateRef(SchemaModel):
    """Annotation template used (001 §10.1.3)."""

    id: str
    version: str


class Metadata(SchemaModel):
    """Traceability and QC fields (001 App. C.4, §9.1.2 d, §11.5)."""

    annotator: str = Field(min_length=1)
    reviewer: str | None = None
    institution: str | None = None
    software: Software = Field(default_factory=Software)
    timestamps: Timestamps = Field(default_factory=Timestamps)
    qc: QCState = Field(default_factory=QCState)
    version: str = Field(min_length=1, description="package version, e.g. v1.0")
    audit: list[AuditEntry] = Field(default_factory=list)
    taxonomy: TaxonomyRef | None = None
    template: TemplateRef | None = None
    model_assistance: ModelAssistance | None = None


class AnnotationPackage(SchemaModel):
    """One annotation package (001 App. C.2)."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    task_id: str = Field(min_length=1)
    image: ImageRef
    related_images: list[ImageRef] = Field(default_factory=list, description="other modalities of the case")
    annotations: list[Annotation] = Field(default_factory=list)
    texts: list[TextDocument] = Field(default_factory=list)
    structured_fields: list[StructuredField] = Field(default_factory=list)
    registrations: list[Registration] = Field(default_factory=list)
    label_maps: dict[str, dict[int, str]] = Field(
        default_factory=dict, description="label-map mask files: mask_file → {voxel value: label_code}"
    )
    metadata: Metadata

    def images(self) -> list[ImageRef]:
        """The package image followed by the related images."""
        return [self.image, *self.related_images]

    def image_of(self, annotation: Annotation) -> ImageRef | None:
        """The image an annotation lies on (``None`` when its ``image_uid`` is unknown)."""
        uid = annotation.image_uid or self.image.uid
        return next((im for im in self.images() if im.uid == uid), None)

    def spans(self) -> dict[str, tuple[TextDocument, TextSpan]]:
        """Every text span by id, with its document."""
        return {s.id: (doc, s) for doc in self.texts for s in doc.spans}

    def referenced_files(self) -> list[tuple[str, FileRole, str]]:
        """Every file the package refers to: ``(relative path, role, owner id)``."""
        out: list[tuple[str, FileRole, str]] = []
        for im in self.images():
            out += [(f.path, f.role, im.uid) for f in im.files]
        rejected = self.metadata.model_assistance.rejected if self.metadata.model_assistance else []
        for ann in [*self.annotations, *rejected]:
            payloads = [ann.data, *([ann.provenance.initial] if ann.provenance and ann.provenance.initial else [])]
            out += [(p.mask_file, FileRole.MASK, ann.id) for p in payloads if p.mask_file]
        out += [(path, FileRole.MASK, "label_maps") for path in self.label_maps]
        out += [(r.transform_file, FileRole.TRANSFORM, r.id) for r in self.registrations]
        out += [(t.source_file, FileRole.TEXT, t.id) for t in self.texts if t.source_file]
        return out


def package_json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`AnnotationPackage`, generated from the models.

    Example
    -------
    >>> schema = package_json_schema()
    >>> schema["title"], "task_id" in schema["required"]
    ('AnnotationPackage', True)
    """
    schema = AnnotationPackage.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://aimd.dev/schemas/annotation-package/{SCHEMA_VERSION}.json"
    return schema
