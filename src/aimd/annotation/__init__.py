"""aimd.annotation — the annotation engine of standard 001.

Package schema (App. C), taxonomy and templates (§8.2–§8.3, §10.1.3), level-1 automatic QC
(§6.5.1, §9.3.1 a, §8.4, §8.5), reader agreement (§8.4 c, §9.1–§9.2, App. D), image registration
(§8.5.1), hashed and frozen exports with verification (§6.6, §10.1.5, §10.2.4, §11.5), DICOM SEG and
COCO exports, simulated phantom readers, and the HTML QC report. The browser platform calls exactly
this library.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = generate_dataset(root / "ph", cases=1, seed=1, size=32, workers=1)
>>> paths = simulate_annotators(root / "ph", 2, seed=0)
>>> [f.code for f in check_package(paths[0]) if f.is_error]
[]
>>> agree(dataset_readers(root / "ph")).summary()["readers"]
2
"""

from aimd.annotation.agreement import AgreementResult, ReaderSet, agree, dataset_readers, reader_sets, write_qc_record
from aimd.annotation.agreement_stats import categorical_agreement, continuous_agreement, model_assist_deviation
from aimd.annotation.audit import append_audit, audit_chain_break
from aimd.annotation.build import image_ref_for, new_package, relative_ref, write_mask
from aimd.annotation.coco import export_coco, packages_to_coco
from aimd.annotation.demo import run_annotation_demo
from aimd.annotation.export import ExportRefusedError, ExportResult, collect_sources, export_packages, freeze
from aimd.annotation.io import (
    PackageSource,
    discover_packages,
    is_package_file,
    load_package,
    load_packages,
    parse_package,
    read_sources,
    save_package,
    save_packages_jsonl,
)
from aimd.annotation.manifest import Manifest, ManifestEntry, VersionIndex, read_manifest, read_versions
from aimd.annotation.qc import (
    QC_CHECKS,
    QCCache,
    QCConfig,
    QCContext,
    check_package,
    findings_summary,
    load_qc_config,
    run_qc,
)
from aimd.annotation.registration import (
    METHODS,
    RegistrationOutcome,
    load_landmarks,
    propagate_mask,
    read_transform,
    register_files,
    register_volumes,
    target_registration_error,
)
from aimd.annotation.report import render_qc_report, worst_slice_figure
from aimd.annotation.schema import (
    SCHEMA_VERSION,
    AIModel,
    Annotation,
    AnnotationData,
    AnnotationPackage,
    AnnotationType,
    AuditEntry,
    Category,
    CrossModalLink,
    FieldType,
    FileRef,
    FileRole,
    ImageRef,
    LinkKind,
    LinkStatus,
    Metadata,
    ModelAssistance,
    Provenance,
    QCState,
    Registration,
    RegistrationAccuracy,
    SemanticType,
    StructuredField,
    TextDocument,
    TextSpan,
    package_json_schema,
)
from aimd.annotation.seg_export import export_seg
from aimd.annotation.simulate import ReaderPlan, plan_readers, simulate_annotators
from aimd.annotation.taxonomy import (
    AttributeSchema,
    EnumValue,
    LabelNode,
    Level,
    Taxonomy,
    default_taxonomy,
    load_taxonomy,
    taxonomy_json_schema,
)
from aimd.annotation.templates import (
    AnnotationTemplate,
    TaxonomyDiff,
    default_template,
    diff_taxonomies,
    load_template,
    template_json_schema,
)
from aimd.annotation.verify import verify_export

__all__ = [
    "METHODS",
    "QC_CHECKS",
    "SCHEMA_VERSION",
    "AIModel",
    "AgreementResult",
    "Annotation",
    "AnnotationData",
    "AnnotationPackage",
    "AnnotationTemplate",
    "AnnotationType",
    "AttributeSchema",
    "AuditEntry",
    "Category",
    "CrossModalLink",
    "EnumValue",
    "ExportRefusedError",
    "ExportResult",
    "FieldType",
    "FileRef",
    "FileRole",
    "ImageRef",
    "LabelNode",
    "Level",
    "LinkKind",
    "LinkStatus",
    "Manifest",
    "ManifestEntry",
    "Metadata",
    "ModelAssistance",
    "PackageSource",
    "Provenance",
    "QCCache",
    "QCConfig",
    "QCContext",
    "QCState",
    "ReaderPlan",
    "ReaderSet",
    "Registration",
    "RegistrationAccuracy",
    "RegistrationOutcome",
    "SemanticType",
    "StructuredField",
    "Taxonomy",
    "TaxonomyDiff",
    "TextDocument",
    "TextSpan",
    "VersionIndex",
    "agree",
    "append_audit",
    "audit_chain_break",
    "categorical_agreement",
    "check_package",
    "collect_sources",
    "continuous_agreement",
    "dataset_readers",
    "default_taxonomy",
    "default_template",
    "diff_taxonomies",
    "discover_packages",
    "export_coco",
    "export_packages",
    "export_seg",
    "findings_summary",
    "freeze",
    "image_ref_for",
    "is_package_file",
    "load_landmarks",
    "load_package",
    "load_packages",
    "load_qc_config",
    "load_taxonomy",
    "load_template",
    "model_assist_deviation",
    "new_package",
    "package_json_schema",
    "packages_to_coco",
    "parse_package",
    "plan_readers",
    "propagate_mask",
    "read_manifest",
    "read_sources",
    "read_transform",
    "read_versions",
    "reader_sets",
    "relative_ref",
    "register_files",
    "register_volumes",
    "render_qc_report",
    "run_annotation_demo",
    "run_qc",
    "save_package",
    "save_packages_jsonl",
    "simulate_annotators",
    "target_registration_error",
    "taxonomy_json_schema",
    "template_json_schema",
    "verify_export",
    "worst_slice_figure",
    "write_mask",
    "write_qc_record",
]
