"""Level-1 traceability checks (001 §9.1.2 d, §6.4.2, §10.1.6, §11.5.1).

* review and audit records exist; the audit hash chain is intact;
* model-assisted labelling is recorded (model name and version) and every model output was
  corrected by a person — an annotation whose source is still ``model`` is an error.

Example
-------
>>> from aimd.annotation.qc.context import QCContext
>>> ctx = QCContext.for_package({"task_id": "T", "image": {"uid": "1", "modality": "CT", "shape": [8, 8, 4],
...     "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "annotations": [{"id": "A", "category": "lesion", "label_code": "LUNG_NODULE", "type": "point",
...                      "point": [1, 1, 0], "provenance": {"source": "model", "model": "seg 1.0"}}],
...     "metadata": {"annotator": "a", "reviewer": "b", "version": "v1",
...                  "software": {"ai_model": {"name": "seg", "version": "1.0"}},
...                  "audit": [{"timestamp": "2025-01-01T00:00:00Z", "actor": "a", "action": "create"}]}})
>>> [f.code for f in check_traceability(ctx)]
['AUDIT_CHAIN_BROKEN', 'MODEL_OUTPUT_UNCORRECTED']
"""

from __future__ import annotations

from aimd.annotation.audit import audit_chain_break
from aimd.annotation.qc.context import QCContext
from aimd.core.findings import Finding

__all__ = ["check_traceability"]


def check_traceability(ctx: QCContext) -> list[Finding]:
    """Reviewer, audit trail and its hash chain, model-assistance records."""
    meta = ctx.package.metadata
    out = []
    if not meta.reviewer:
        out.append(
            ctx.finding(
                "REVIEWER_MISSING",
                "info",
                "001 §9.1.2 d",
                "no reviewer recorded yet",
                "second-level review records the reviewer (001 §9.3.1 b)",
            )
        )
    if not meta.audit:
        out.append(
            ctx.finding(
                "AUDIT_EMPTY",
                "warning",
                "001 §9.1.2 d",
                "the audit trail is empty",
                "record creation, model suggestions, revisions and reviews in metadata.audit",
            )
        )
    broken = audit_chain_break(meta.audit)
    if broken is not None and meta.audit[broken].sha256 is None:
        out.append(
            ctx.finding(
                "AUDIT_CHAIN_BROKEN",
                "error",
                "001 §11.5.1",
                f"audit entry {broken} carries no hash: a trail without its hash chain cannot show that "
                "no entry was changed, removed or reordered",
                "record the trail with aimd (append_audit chains every entry)",
                audit_index=broken,
            )
        )
    elif broken is not None:
        out.append(
            ctx.finding(
                "AUDIT_CHAIN_BROKEN",
                "error",
                "001 §11.5.1",
                f"audit entry {broken} does not match its recorded hash chain: an entry was "
                "changed, removed or reordered",
                "restore the original audit trail",
                audit_index=broken,
            )
        )
    assisted = [
        a
        for a in ctx.package.annotations
        if a.provenance is not None and a.provenance.source in ("model", "model_corrected")
    ]
    if (assisted or meta.model_assistance) and meta.software.ai_model is None:
        out.append(
            ctx.finding(
                "MODEL_ASSIST_UNRECORDED",
                "error",
                "001 §10.1.6",
                "model-assisted annotations but no model recorded in metadata.software.ai_model",
                "record the model name, version and inference parameters",
            )
        )
    for ann in assisted:
        if ann.provenance is not None and ann.provenance.source == "model":
            out.append(
                ctx.finding(
                    "MODEL_OUTPUT_UNCORRECTED",
                    "error",
                    "001 §6.4.2",
                    f"{ann.id} is a model output nobody has corrected or confirmed",
                    "review it; set provenance.source to model_corrected",
                    annotation=ann.id,
                )
            )
    return out
