"""Level-1 label checks: taxonomy membership, category, attribute schemas, template rules.

001 §6.5.1 (labels legal under the taxonomy), §8.4 b (same codes and names everywhere), §10.1.2 c
(attribute dictionary, enum values, unit and range), §10.1.3 (project template).

Example
-------
>>> from aimd.annotation.qc.context import QCContext
>>> ctx = QCContext.for_package({"task_id": "T", "image": {"uid": "1", "modality": "CT", "shape": [8, 8, 4],
...     "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "annotations": [{"id": "A", "category": "lesion", "label_code": "TUMOR_X", "type": "point",
...                      "point": [1, 1, 0]}], "metadata": {"annotator": "a", "version": "v1"}})
>>> [f.code for f in check_labels(ctx)]
['LABEL_NOT_IN_TAXONOMY']
"""

from __future__ import annotations

from collections import Counter

from aimd.annotation.qc.context import QCContext
from aimd.core.findings import Finding

__all__ = ["check_labels", "check_template"]


def check_labels(ctx: QCContext) -> list[Finding]:
    """Every label is in the taxonomy with the right category; attributes pass their schemas."""
    tax = ctx.taxonomy
    out = []
    ref = ctx.package.metadata.taxonomy
    if ref is not None and (ref.name, ref.version) != (tax.name, tax.version):
        out.append(
            ctx.finding(
                "TAXONOMY_VERSION_MISMATCH",
                "warning",
                "001 §8.4 b",
                f"package was labelled with taxonomy {ref.name} {ref.version}, checked against "
                f"{tax.name} {tax.version}",
                "check against the taxonomy it was labelled with, or migrate it (see `aimd annotation taxonomy diff`)",
            )
        )
    for ann in ctx.package.annotations:
        node = tax.get(ann.label_code)
        if node is None:
            out.append(
                ctx.finding(
                    "LABEL_NOT_IN_TAXONOMY",
                    "error",
                    "001 §6.5.1",
                    f"label {ann.label_code!r} is not in taxonomy {tax.name} {tax.version}",
                    "use a code from the taxonomy (`aimd annotation taxonomy show`) or extend it with a new version",
                    annotation=ann.id,
                )
            )
            continue
        if node.category != ann.category:
            out.append(
                ctx.finding(
                    "LABEL_CATEGORY_MISMATCH",
                    "error",
                    "001 §8.4 b",
                    f"{ann.label_code} is a {node.category.value} label, the annotation says {ann.category.value}",
                    f"set category to {node.category.value!r}",
                    annotation=ann.id,
                )
            )
        for name, problem in tax.check_attributes(ann.label_code, ann.data.attributes):
            unknown = node.attribute(name) is None
            out.append(
                ctx.finding(
                    "ATTRIBUTE_UNKNOWN" if unknown else "ATTRIBUTE_INVALID",
                    "warning" if unknown else "error",
                    "001 §10.1.2 c",
                    f"{ann.label_code}.{name}: {problem}",
                    "use the attributes, values, units and ranges the taxonomy defines",
                    annotation=ann.id,
                    attribute=name,
                )
            )
    return out


def check_template(ctx: QCContext) -> list[Finding]:
    """Labels, types, required attributes and counts allowed by the project template (§10.1.3)."""
    tpl = ctx.template
    if tpl is None:
        return []
    out = []
    ref = ctx.package.metadata.template
    if ref is not None and (ref.id, ref.version) != (tpl.id, tpl.version):
        out.append(
            ctx.finding(
                "TEMPLATE_VERSION_MISMATCH",
                "warning",
                "001 §10.1.3",
                f"package names template {ref.id} {ref.version}, checked against {tpl.id} {tpl.version}",
                "check against the template it was made with",
            )
        )
    counts = Counter(a.label_code for a in ctx.package.annotations)
    for ann in ctx.package.annotations:
        entry = tpl.entry(ann.label_code)
        if entry is None:
            out.append(
                ctx.finding(
                    "TEMPLATE_LABEL_NOT_ALLOWED",
                    "error",
                    "001 §10.1.3",
                    f"label {ann.label_code} is not part of template {tpl.id} {tpl.version}",
                    "use the template's labels or a template that includes this one",
                    annotation=ann.id,
                )
            )
            continue
        if ann.type not in entry.types:
            out.append(
                ctx.finding(
                    "TEMPLATE_TYPE_NOT_ALLOWED",
                    "error",
                    "001 §10.1.3",
                    f"{ann.label_code} may be annotated as {[t.value for t in entry.types]}, not {ann.type.value}",
                    "change the annotation type",
                    annotation=ann.id,
                )
            )
        missing = [a for a in entry.required_attributes if a not in ann.data.attributes]
        if missing:
            out.append(
                ctx.finding(
                    "TEMPLATE_ATTRIBUTE_MISSING",
                    "error",
                    "001 §10.1.3",
                    f"{ann.label_code} needs attributes {missing}",
                    "fill in the attributes",
                    annotation=ann.id,
                )
            )
    for e in tpl.entries:
        if e.max_count is not None and counts[e.label_code] > e.max_count:
            out.append(
                ctx.finding(
                    "TEMPLATE_COUNT_EXCEEDED",
                    "error",
                    "001 §10.1.3",
                    f"{counts[e.label_code]} {e.label_code} annotations, template allows {e.max_count}",
                    "merge or delete the extra annotations",
                )
            )
    return out
