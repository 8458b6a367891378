"""Boxes of annotation packages → COCO JSON (001 §10.1.2 a detection labels, §10.1.5 export).

COCO is 2-D: a 2-D box on an image (or on ``slice_index`` of a volume) becomes one COCO box; a 3-D box
``[x0, y0, z0, x1, y1, z1]`` becomes one COCO box on every slice it covers. Each (image, slice) is one
COCO image whose ``file_name`` is the image file (``#z=<k>`` added for volumes). Categories are the
taxonomy codes used, numbered in taxonomy order. Package voxel-edge coordinates are COCO's pixel
convention already, so ``bbox = [x0, y0, x1 - x0, y1 - y0]`` needs no half-pixel shift.

Example
-------
>>> from aimd.annotation.schema import AnnotationPackage
>>> from aimd.annotation.io import PackageSource
>>> import pathlib
>>> pkg = AnnotationPackage.model_validate({"task_id": "T", "image": {"uid": "1.2", "modality": "DX",
...     "shape": [64, 99, 1], "spacing": [0.8, 0.8, 1], "origin": [0, 0, 0]},
...     "annotations": [{"id": "B1", "category": "lesion", "label_code": "LUNG_NODULE", "type": "bbox",
...                      "bbox": [10, 20, 18, 26]}], "metadata": {"annotator": "a", "version": "v1"}})
>>> coco = packages_to_coco([PackageSource(pkg, pathlib.Path("/x/p.json"))])
>>> coco["annotations"][0]["bbox"], coco["annotations"][0]["area"], coco["categories"][0]["name"]
([10.0, 20.0, 8.0, 6.0], 48.0, 'LUNG_NODULE')
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aimd import __version__
from aimd.annotation.io import PackageSource
from aimd.annotation.schema import Annotation, AnnotationType, FileRole, ImageRef
from aimd.annotation.taxonomy import Taxonomy, default_taxonomy
from aimd.core.atomic import atomic_write_json

__all__ = ["export_coco", "packages_to_coco"]


def _file_name(image: ImageRef, name_of: Callable[[PackageSource, str], str], source: PackageSource) -> str:
    files = [f for f in image.files if f.role is FileRole.IMAGE] or list(image.files)
    return name_of(source, files[0].path) if files else image.uid


def _boxes(ann: Annotation, image: ImageRef) -> list[tuple[int, list[float]]]:
    box = [float(v) for v in ann.data.bbox or []]
    if len(box) == 4:
        return [(ann.data.slice_index or 0, box)]
    x0, y0, z0, x1, y1, z1 = box
    first, last = max(math.floor(z0), 0), min(math.ceil(z1) - 1, image.shape[2] - 1)
    return [(k, [x0, y0, x1, y1]) for k in range(first, last + 1)]


def packages_to_coco(
    sources: Sequence[PackageSource],
    *,
    taxonomy: Taxonomy | None = None,
    file_name: Callable[[PackageSource, str], str] | None = None,
) -> dict[str, Any]:
    """A COCO dictionary of every box in ``sources`` (``file_name`` maps a package file reference)."""
    tax = taxonomy or default_taxonomy()
    name_of = file_name or (lambda s, rel: s.resolve(rel).as_posix())
    order = {code: i for i, code in enumerate(tax.codes())}
    boxes = [(s, a) for s in sources for a in s.package.annotations if a.type is AnnotationType.BBOX]
    codes = sorted({a.label_code for _, a in boxes}, key=lambda c: (order.get(c, len(order)), c))
    cat_id = {c: i + 1 for i, c in enumerate(codes)}
    images: dict[tuple[str, str, int], int] = {}
    image_rows: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for source, ann in boxes:
        image = source.package.image_of(ann)
        if image is None:
            continue
        for k, (x0, y0, x1, y1) in _boxes(ann, image):
            key = (str(source.path), image.uid, k)
            if key not in images:
                images[key] = len(image_rows) + 1
                fname = _file_name(image, name_of, source) + (f"#z={k}" if image.shape[2] > 1 else "")
                image_rows.append(
                    {
                        "id": images[key],
                        "file_name": fname,
                        "width": image.shape[0],
                        "height": image.shape[1],
                        "aimd_image_uid": image.uid,
                        "slice_index": k,
                        "aimd_package": name_of(source, source.path.name),
                    }
                )
            node = tax.get(ann.label_code)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": images[key],
                    "category_id": cat_id[ann.label_code],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "attributes": ann.data.attributes,
                    "aimd_annotation_id": ann.id,
                    "aimd_annotator": source.package.metadata.annotator,
                    "aimd_category": node.category.value if node else ann.category.value,
                }
            )
    categories = [
        {"id": cat_id[c], "name": c, "supercategory": (tax.get(c).category.value if tax.get(c) else "")} for c in codes
    ]
    return {
        "info": {
            "description": "aimd annotation export (boxes)",
            "version": __version__,
            "date_created": dt.datetime.now(dt.UTC).isoformat(),
            "taxonomy": f"{tax.name} {tax.version}",
        },
        "licenses": [],
        "images": image_rows,
        "annotations": annotations,
        "categories": categories,
    }


def export_coco(
    sources: Sequence[PackageSource],
    out_path: str | Path,
    *,
    taxonomy: Taxonomy | None = None,
    file_name: Callable[[PackageSource, str], str] | None = None,
) -> dict[str, Any]:
    """Write :func:`packages_to_coco` atomically to ``out_path`` and return it."""
    coco = packages_to_coco(sources, taxonomy=taxonomy, file_name=file_name)
    atomic_write_json(out_path, coco)
    return coco
