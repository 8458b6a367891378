"""A validated baseline dataset for aimd's own device (002 §4.3.2): phantom CTs from held-out sites with
the reference results of the shipped reference device ``device-lesions`` (:mod:`aimd.models.reference`).

The cases are generated from a fixed seed (their arrays hashed), written as NIfTI, and run through the
shipped weights (SHA-256 checked on load) at the operating point of their run record (probability
threshold and minimum lesion volume, chosen on a validation set of the training sites; 0.5 / 15 mm³
for a record without one); the finding count of each case is its validated reference.
The installed service must reproduce it: ``performance.baseline`` compares its answers
(``findings.#``), and the concurrency and stress checks send the first case as the typical task. The
result is written once to ``baseline.json`` and reused while the weights, the operating point and the
settings are the same.

Example
-------
>>> from aimd.iq.template import protocol_template
>>> p = apply_baseline(protocol_template("1.0.0"), {"dataset": "d", "reference_source": "r",
...     "cases": [{"id": "c1", "file": "c1.nii.gz", "reference": "2"}]})
>>> p.baseline.cases[0].reference, p.baseline.answer_field
('2', 'findings.#')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aimd.core.atomic import atomic_write_json
from aimd.core.hashing import sha256_file
from aimd.iq.protocol import BaselineCase, IQProtocol

DEVICE = "device-lesions"
SETTINGS = {"seed": 20261205, "count": 4, "size": 48}


def reference_baseline(
    folder: str | Path, *, device: str = DEVICE, weights: str | Path | None = None, **overrides: int
) -> dict[str, Any]:
    """Write the baseline cases into ``folder`` with their reference results from the shipped ``device``.

    ``weights`` is another folder holding the device's weights and run record (default: the shipped ones).
    """
    from aimd.imaging.nifti_io import write_nifti
    from aimd.models.reference import load_reference
    from aimd.models.reference.phantomdata import HELD_OUT_SITES, build_cases, data_sha256

    folder = Path(folder)
    settings = {**SETTINGS, **overrides}
    model = load_reference(device, folder=weights)
    digest = str(model.metadata["weights_sha256"])
    point = model.metadata.get("operating_point")
    index = folder / "baseline.json"
    if index.is_file():
        known = json.loads(index.read_text(encoding="utf-8"))
        files_ok = all(
            Path(c["file"]).is_file() and sha256_file(c["file"]) == c["sha256"] for c in known.get("cases", [])
        )
        same = (known.get("weights_sha256"), known.get("operating_point"), known.get("settings"))
        if same == (digest, point, settings) and files_ok:
            return dict(known)
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases(seed=settings["seed"], count=settings["count"], size=settings["size"], sites=HELD_OUT_SITES)
    rows = []
    for case in cases:
        path = folder / f"{case.case_id}.nii.gz"
        volume = case.grid.volume(case.ct, modality="CT")
        write_nifti(volume, path)
        found = model.predict_volume(volume).record["lesions"]
        rows.append(
            {
                "id": case.case_id,
                "site": case.site.site_id,
                "file": str(path),
                "sha256": sha256_file(path),
                "reference": str(len(found)),
                "phantom_lesions": int(case.instances.max()),
            }
        )
    baseline = {
        "dataset": f"aimd phantom CTs, held-out sites {', '.join(HELD_OUT_SITES)}, {settings['count']} cases of "
        f"{settings['size']}³ (data SHA-256 {data_sha256(cases)[:16]}…)",
        "reference_source": f"finding counts of the shipped reference device {device} "
        f"(weights SHA-256 {digest[:16]}…, {_point_text(point)}), aimd.models.reference",
        "device": device,
        "weights_sha256": digest,
        "operating_point": point,
        "settings": settings,
        "data_sha256": data_sha256(cases),
        "cases": rows,
    }
    atomic_write_json(index, baseline)
    return baseline


def _point_text(point: dict[str, Any] | None) -> str:
    """The operating point in words.

    Example
    -------
    >>> _point_text({"threshold": 0.1, "min_lesion_mm3": 30.0, "source": "validation"})
    'operating point: probability ≥ 0.1, lesions ≥ 30 mm³ (validation)'
    """
    if not point:
        return "no operating point"
    return (
        f"operating point: probability ≥ {point['threshold']:g}, lesions ≥ {point['min_lesion_mm3']:g} mm³ "
        f"({point.get('source', 'run record')})"
    )


def apply_baseline(protocol: IQProtocol, baseline: dict[str, Any], *, model: str = "lesion") -> IQProtocol:
    """The protocol with ``baseline``'s cases, uploaded to ``/v2/models/<model>/infer``, answers ``findings.#``."""
    spec = protocol.baseline
    spec.dataset = baseline["dataset"]
    spec.reference_source = baseline["reference_source"]
    spec.endpoint = f"/v2/models/{model}/infer"
    spec.answer_field = "findings.#"
    spec.cases = [BaselineCase(id=c["id"], file=c["file"], reference=c["reference"]) for c in baseline["cases"]]
    return protocol


__all__ = ["DEVICE", "SETTINGS", "apply_baseline", "reference_baseline"]
