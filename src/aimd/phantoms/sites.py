"""Acquisition sites: the scanner and protocol differences between hospitals.

Each site has its own scanner metadata (manufacturer / model), in-plane pixel spacing, slice
thickness, noise level and HU calibration offset, so a dataset drawn from several sites carries
the domain shifts that generalization tests (000 §5.2.7) need.

Example
-------
>>> [s.site_id for s in site_profiles(2)]
['SITE_A', 'SITE_B']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aimd.core.errors import InvalidInputError


@dataclass(frozen=True)
class SiteProfile:
    """One acquisition site (hospital + scanner + protocol)."""

    site_id: str
    institution_en: str
    institution_zh: str
    city_zh: str
    manufacturer: str
    model: str
    station: str
    pixel_mm: float
    slice_mm: float
    noise_hu: float
    hu_offset: float
    kvp: float
    dx_photons: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form for dataset.json."""
        return asdict(self)


SITE_PROFILES: tuple[SiteProfile, ...] = (
    SiteProfile(
        "SITE_A",
        "First Affiliated Hospital of Binjiang Medical University",
        "滨江医科大学附属第一医院",
        "沈阳市",
        "GE MEDICAL SYSTEMS",
        "Revolution CT",
        "CTA01",
        0.78,
        1.25,
        12.0,
        0.0,
        120.0,
        2.0e4,
    ),
    SiteProfile(
        "SITE_B",
        "Yunling People's Hospital",
        "云岭市人民医院",
        "大连市",
        "SIEMENS",
        "SOMATOM Definition AS",
        "CTB07",
        0.70,
        2.0,
        18.0,
        6.0,
        120.0,
        1.2e4,
    ),
    SiteProfile(
        "SITE_C",
        "Qinghe Central Hospital",
        "青禾市中心医院",
        "鞍山市",
        "Philips",
        "Ingenuity CT",
        "CTC03",
        0.88,
        2.5,
        24.0,
        -8.0,
        110.0,
        8.0e3,
    ),
    SiteProfile(
        "SITE_D",
        "Donghu Second People's Hospital",
        "东湖市第二人民医院",
        "锦州市",
        "CANON_MEC",
        "Aquilion Prime",
        "CTD02",
        0.74,
        3.0,
        15.0,
        12.0,
        120.0,
        1.5e4,
    ),
    SiteProfile(
        "SITE_E",
        "Beichen Cancer Hospital",
        "北辰肿瘤医院",
        "沈阳市",
        "UIH",
        "uCT 760",
        "CTE05",
        0.82,
        5.0,
        20.0,
        -4.0,
        130.0,
        1.0e4,
    ),
    SiteProfile(
        "SITE_F",
        "Nanyu Third People's Hospital",
        "南屿市第三人民医院",
        "丹东市",
        "NMS",
        "NeuViz 128",
        "CTF01",
        0.90,
        1.5,
        28.0,
        15.0,
        100.0,
        6.0e3,
    ),
)


def site_profiles(count: int) -> tuple[SiteProfile, ...]:
    """The first ``count`` site profiles (1 to 6).

    Example
    -------
    >>> site_profiles(1)[0].manufacturer
    'GE MEDICAL SYSTEMS'
    """
    if not 1 <= count <= len(SITE_PROFILES):
        raise InvalidInputError(
            f"sites must be between 1 and {len(SITE_PROFILES)}, got {count}",
            where="--sites",
            hint=f"pass --sites 1..{len(SITE_PROFILES)}",
        )
    return SITE_PROFILES[:count]


__all__ = ["SITE_PROFILES", "SiteProfile", "site_profiles"]
