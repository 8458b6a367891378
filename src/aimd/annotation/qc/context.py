"""What every level-1 QC check sees: the package, its folder, taxonomy, template, thresholds, files.

Example
-------
>>> from aimd.annotation.schema import AnnotationPackage
>>> from aimd.annotation.io import PackageSource
>>> import pathlib
>>> pkg = AnnotationPackage.model_validate({"task_id": "T", "image": {"uid": "1", "modality": "CT",
...     "shape": [2, 2, 1], "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> ctx = QCContext.build(PackageSource(pkg, pathlib.Path("/data/p.json")))
>>> ctx.finding("X", "error", "001 §6.5.1", "m", annotation="A1").location
{'package': '/data/p.json', 'annotation': 'A1'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimd.annotation.io import PackageSource
from aimd.annotation.masks import GridTolerance, MaskStore
from aimd.annotation.qc.config import QCConfig, load_qc_config
from aimd.annotation.schema import Annotation, AnnotationData, AnnotationPackage, ImageRef
from aimd.annotation.taxonomy import Taxonomy, default_taxonomy
from aimd.annotation.templates import AnnotationTemplate
from aimd.core.errors import AimdError
from aimd.core.findings import Finding, Severity
from aimd.imaging.io import read_volume
from aimd.imaging.volume import Volume

__all__ = ["MaskUse", "QCCache", "QCContext"]


@dataclass
class QCCache:
    """Files read during QC, shared across packages of one run (images are read once per run)."""

    masks: MaskStore = field(default_factory=MaskStore)
    images: dict[Path, Volume | AimdError] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskUse:
    """One use of a mask file: by which annotation, with which value, on which image."""

    annotation: Annotation
    data: AnnotationData
    image: ImageRef
    path: Path
    role: str  # "final", "initial" (model suggestion) or "rejected"


@dataclass
class QCContext:
    """Inputs of one QC run over one package."""

    source: PackageSource
    taxonomy: Taxonomy
    template: AnnotationTemplate | None
    config: QCConfig
    cache: QCCache = field(default_factory=QCCache)

    @classmethod
    def build(
        cls,
        source: PackageSource,
        *,
        taxonomy: Taxonomy | None = None,
        template: AnnotationTemplate | None = None,
        config: QCConfig | None = None,
        cache: QCCache | None = None,
    ) -> QCContext:
        """A context with defaults: the built-in taxonomy, no template, default thresholds, a fresh cache."""
        return cls(source, taxonomy or default_taxonomy(), template, config or load_qc_config(), cache or QCCache())

    @property
    def masks(self) -> MaskStore:
        """Mask files read so far."""
        return self.cache.masks

    @classmethod
    def for_package(
        cls, package: AnnotationPackage | dict[str, Any], path: str | Path = "package.json", **kwargs: Any
    ) -> QCContext:
        """A context for a package held in memory (e.g. one being edited), files resolved from ``path``."""
        pkg = package if isinstance(package, AnnotationPackage) else AnnotationPackage.model_validate(package)
        return cls.build(PackageSource(pkg, Path(path)), **kwargs)

    @property
    def package(self) -> AnnotationPackage:
        """The package under check."""
        return self.source.package

    @property
    def tolerance(self) -> GridTolerance:
        """Grid tolerances from the config."""
        c = self.config
        return GridTolerance(c.spacing_rtol, c.origin_atol_mm, c.direction_atol)

    def finding(
        self, code: str, severity: Severity | str, clause: str, message: str, hint: str = "", **location: Any
    ) -> Finding:
        """A finding located in this package (plus ``location`` keys such as annotation, file, slice)."""
        loc = {"package": self.source.where, **{k: v for k, v in location.items() if v is not None}}
        return Finding(code=code, severity=Severity(severity), clause=clause, location=loc, message=message, hint=hint)

    def mask_uses(self) -> list[MaskUse]:
        """Every mask reference: final masks, model suggestions before correction, rejected suggestions."""
        pkg = self.package
        out = []
        rejected = pkg.metadata.model_assistance.rejected if pkg.metadata.model_assistance else []
        for ann, role in [*((a, "final") for a in pkg.annotations), *((a, "rejected") for a in rejected)]:
            image = pkg.image_of(ann)
            if image is None:
                continue
            if ann.data.mask_file:
                out.append(MaskUse(ann, ann.data, image, self.source.resolve(ann.data.mask_file), role))
            initial = ann.provenance.initial if ann.provenance else None
            if initial is not None and initial.mask_file:
                out.append(MaskUse(ann, initial, image, self.source.resolve(initial.mask_file), "initial"))
        return out

    def image_volume(self, path: Path) -> Volume | AimdError:
        """The image file at ``path`` (read once), or the error met reading it."""
        key = path.resolve()
        images = self.cache.images
        if key not in images:
            try:
                images[key] = read_volume(key)
            except AimdError as err:
                images[key] = err
        return images[key]
