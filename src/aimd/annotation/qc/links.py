"""Level-1 cross-modal checks: unique ids, dangling or mistyped links, text spans, image↔text conflicts.

* ids of annotations, texts, spans, fields and registrations are unique (001 §8.5.2.2 unique ID);
* every ``cross_modal_links`` target exists and has the stated kind (001 §8.4 d);
* text spans point at the characters they quote (001 §8.5.2.4 text fragment references);
* links marked ``inconsistent`` enter the QC flow (001 §8.5.2.3);
* an image attribute contradicting the text it is linked to (a span naming that attribute, read with
  the taxonomy's value names and tolerance) must be marked ``inconsistent``.

Example
-------
>>> from aimd.annotation.qc.context import QCContext
>>> text = "Nodule, 6 mm, ill-defined."
>>> ctx = QCContext.for_package({"task_id": "T", "image": {"uid": "1", "modality": "CT", "shape": [8, 8, 4],
...     "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "annotations": [{"id": "A", "category": "lesion", "label_code": "LUNG_NODULE", "type": "point",
...                      "point": [1, 1, 0], "attributes": {"margin": "well_defined"},
...                      "cross_modal_links": ["S1", "S9"]}],
...     "texts": [{"id": "R", "text": text, "spans": [{"id": "S1", "start": 14, "end": 25,
...                "text": "ill-defined", "semantic_type": "attribute", "attribute": "margin"}]}],
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> [f.code for f in check_links(ctx)]
['IMAGE_TEXT_CONFLICT_UNMARKED', 'LINK_DANGLING']
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from aimd.annotation.qc.context import QCContext
from aimd.annotation.schema import Annotation, CrossModalLink, LinkKind, LinkStatus, TextSpan
from aimd.core.findings import Finding

__all__ = ["check_ids", "check_links", "check_text_spans", "link_targets"]


def link_targets(ctx: QCContext) -> dict[str, LinkKind]:
    """Every id a link may point at, with the kind of link that reaches it."""
    pkg = ctx.package
    targets = {a.id: LinkKind.IMAGE_IMAGE for a in pkg.annotations}
    targets |= {r.id: LinkKind.IMAGE_IMAGE for r in pkg.registrations}
    targets |= {sid: LinkKind.IMAGE_TEXT for sid in pkg.spans()}
    targets |= {t.id: LinkKind.IMAGE_TEXT for t in pkg.texts}
    targets |= {f.id: LinkKind.IMAGE_STRUCTURED for f in pkg.structured_fields}
    return targets


def check_ids(ctx: QCContext) -> list[Finding]:
    """No id is used twice across annotations, texts, spans, fields and registrations; no id holds a
    control character (tab, newline, escape, …)."""
    pkg = ctx.package
    ids = (
        [a.id for a in pkg.annotations]
        + [t.id for t in pkg.texts]
        + list(s.id for t in pkg.texts for s in t.spans)
        + [f.id for f in pkg.structured_fields]
        + [r.id for r in pkg.registrations]
    )
    named = [
        ("task_id", pkg.task_id),
        ("image.uid", pkg.image.uid),
        ("metadata.annotator", pkg.metadata.annotator),
        *(("id", i) for i in ids),
    ]
    out = [
        ctx.finding(
            "ID_CONTROL_CHARACTER",
            "error",
            "001 §8.5.2.2",
            f"{field} {value!r} holds a control character (U+{ord(bad):04X})",
            "ids are printable text: remove tabs, newlines, escape and other control characters",
            field=field,
            id=value.encode("unicode_escape").decode("ascii"),
        )
        for field, value in named
        if isinstance(value, str) and (bad := next((c for c in value if unicodedata.category(c) == "Cc"), None))
    ]
    return out + [
        ctx.finding(
            "DUPLICATE_ID",
            "error",
            "001 §8.5.2.2",
            f"id {i!r} is used {n} times",
            "give every object, span and field its own id",
            id=i,
        )
        for i, n in sorted(Counter(ids).items())
        if n > 1
    ]


def check_text_spans(ctx: QCContext) -> list[Finding]:
    """Each span's offsets lie in its text and select exactly the quoted characters."""
    out = []
    for doc in ctx.package.texts:
        for span in doc.spans:
            actual = doc.text[span.start : span.end] if span.end <= len(doc.text) else None
            if actual != span.text:
                got = "beyond the end of the text" if actual is None else repr(actual[:40])
                out.append(
                    ctx.finding(
                        "TEXT_SPAN_MISMATCH",
                        "error",
                        "001 §8.5.2.4",
                        f"span {span.id} [{span.start}:{span.end}] quotes {span.text[:40]!r} but "
                        f"the text there is {got}",
                        "recompute the span offsets",
                        text=doc.id,
                        span=span.id,
                    )
                )
    return out


def _conflict(ctx: QCContext, ann: Annotation, span: TextSpan) -> tuple[str, object, object] | None:
    if span.attribute is None or span.attribute not in ann.data.attributes:
        return None
    node = ctx.taxonomy.get(ann.label_code)
    schema = node.attribute(span.attribute) if node else None
    if schema is None:
        return None
    text_value = schema.value_from_text(span.text)
    image_value = ann.data.attributes[span.attribute]
    return (span.attribute, image_value, text_value) if schema.conflicts(image_value, text_value) else None


def _one_link(
    ctx: QCContext, ann: Annotation, link: CrossModalLink, targets: dict[str, LinkKind], spans: dict[str, TextSpan]
) -> list[Finding]:
    if link.target == ann.id:
        return [
            ctx.finding(
                "LINK_SELF",
                "error",
                "001 §8.4 d",
                f"{ann.id} links to itself",
                "remove the link",
                annotation=ann.id,
                target=link.target,
            )
        ]
    kind = targets.get(link.target)
    if kind is None:
        return [
            ctx.finding(
                "LINK_DANGLING",
                "error",
                "001 §8.4 d",
                f"{ann.id} links to {link.target!r}, which is no annotation, text span, field or "
                "registration of this package",
                "fix the target id or add the missing object",
                annotation=ann.id,
                target=link.target,
            )
        ]
    out = []
    if link.kind is not None and link.kind != kind:
        out.append(
            ctx.finding(
                "LINK_KIND_MISMATCH",
                "error",
                "001 §8.4 d",
                f"link {ann.id} → {link.target} says {link.kind.value}, the target makes it {kind.value}",
                f"set kind to {kind.value!r}",
                annotation=ann.id,
                target=link.target,
            )
        )
    span = spans.get(link.target)
    conflict = _conflict(ctx, ann, span) if span is not None else None
    if link.status is LinkStatus.INCONSISTENT:
        clause = "001 §8.5.2.3" if kind is LinkKind.IMAGE_TEXT else "001 §8.4 d"
        code = "IMAGE_TEXT_INCONSISTENT" if kind is LinkKind.IMAGE_TEXT else "CROSS_MODAL_INCONSISTENT"
        note = f": {link.note}" if link.note else ""
        out.append(
            ctx.finding(
                code,
                "warning",
                clause,
                f"{ann.id} ↔ {link.target} is marked inconsistent{note}",
                "second-level review decides which side is right (001 §9.3.1 b)",
                annotation=ann.id,
                target=link.target,
            )
        )
    elif conflict is not None:
        name, image_value, text_value = conflict
        out.append(
            ctx.finding(
                "IMAGE_TEXT_CONFLICT_UNMARKED",
                "error",
                "001 §8.5.2.3",
                f"{ann.id}.{name} = {image_value!r} but the linked text {link.target} says "
                f"{text_value!r}, and the link is marked {link.status.value}",
                "mark the link 'inconsistent' with a note, or correct the attribute",
                annotation=ann.id,
                target=link.target,
                attribute=name,
            )
        )
    return out


def check_links(ctx: QCContext) -> list[Finding]:
    """Cross-modal links resolve, have the right kind, and image↔text conflicts are marked."""
    targets = link_targets(ctx)
    spans = {sid: s for sid, (_, s) in ctx.package.spans().items()}
    out = []
    for ann in ctx.package.annotations:
        for link in ann.cross_modal_links:
            out += _one_link(ctx, ann, link, targets, spans)
    return out
