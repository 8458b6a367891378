"""A one-sentence key-feature description of a finding in Chinese and English (003 §4.1.3, §5.1).

The sentence names where the finding is, its size (longest diameter) and, for CT, its density class
from the mean HU inside it; a finding graded ``review`` adds "recommend manual review".

Density classes (mean HU): air < −750 ≤ ground-glass < −300 ≤ mixed < −100 ≤ soft tissue < 100 ≤
high density < 200 ≤ calcified.

Example
-------
>>> from aimd.serving.findings import InferenceFinding, Location
>>> loc = Location(organ="lung", side="right", level="lower", en="right lung, lower zone", zh="右肺下野")
>>> f = InferenceFinding(id="F1", label=1, label_name="lung_nodule", voxels=40, volume_mm3=260.0,
...                      longest_diameter_mm=8.2, centroid_lps_mm=(0, 0, 0), location=loc, confidence=0.95,
...                      grade="high", review_recommended=False, mean_hu=-560.0)
>>> key_features(f)["zh"]
'右肺下野见直径约8 mm磨玻璃影。'
>>> key_features(f)["en"]
'An 8 mm ground-glass opacity in the right lung, lower zone.'
"""

from __future__ import annotations

from aimd.serving.findings import InferenceFinding

DENSITY_CLASSES: tuple[tuple[float, str, str, str], ...] = (
    (-750.0, "air", "含气密度影", "air-density lesion"),
    (-300.0, "ground_glass", "磨玻璃影", "ground-glass opacity"),
    (-100.0, "mixed", "混杂密度影", "mixed-density lesion"),
    (100.0, "soft_tissue", "软组织密度影", "soft-tissue density lesion"),
    (200.0, "high_density", "高密度影", "high-density lesion"),
    (float("inf"), "calcified", "钙化密度影", "calcified lesion"),
)


def density_class(mean_hu: float | None) -> tuple[str, str, str] | None:
    """``(class, zh, en)`` of a mean HU value, ``None`` when there is no HU (not CT).

    Example
    -------
    >>> density_class(40.0)[0], density_class(-600.0)[0], density_class(None)
    ('soft_tissue', 'ground_glass', None)
    """
    if mean_hu is None:
        return None
    for upper, name, zh, en in DENSITY_CLASSES:
        if mean_hu < upper:
            return name, zh, en
    return None  # pragma: no cover - the last class is unbounded


def _article(word: str) -> str:
    return "An" if word[:1] in "aeio8" or word.startswith(("11 ", "18 ")) else "A"


def key_features(finding: InferenceFinding) -> dict[str, str | None]:
    """The description of ``finding`` as ``{"zh", "en", "density"}``."""
    size = f"{finding.longest_diameter_mm:.0f} mm"
    dens = density_class(finding.mean_hu)
    where_zh = finding.location.zh if finding.location else "图像内"
    where_en = finding.location.en if finding.location else "the image"
    noun_zh = dens[1] if dens else f"{finding.label_name}区域"
    noun_en = dens[2] if dens else f"{finding.label_name.replace('_', ' ')} region"
    zh = f"{where_zh}见直径约{size}{noun_zh}。"
    en = f"{_article(size)} {size} {noun_en} in the {where_en}."
    if finding.grade == "review":
        zh = zh[:-1] + f"，置信度{finding.confidence:.2f}，建议人工复核。"
        en = en[:-1] + f"; confidence {finding.confidence:.2f}, manual review recommended."
    return {"zh": zh, "en": en, "density": dens[0] if dens else None}


__all__ = ["DENSITY_CLASSES", "density_class", "key_features"]
