"""A validated baseline dataset for aimd's own device (002 §4.3.2): phantom CTs from held-out sites with
the reference results of the shipped reference device ``device-lesions`` (:mod:`aimd.models.reference`).

The cases are generated from a fixed seed (their arrays hashed), written as NIfTI, and run through the
shipped weights (SHA-256 checked on load); the finding count of each case is its validated reference.
The installed service must reproduce it: ``performance.baseline`` compares its answers
(``findings.#``), and the concurrency and stress checks send the first case as the typical task. The
result is written once to ``baseline.json`` and reused while the weights and settings are the same.

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


def reference_baseline(folder: str | Path, *, device: str = DEVICE, **overrides: int) -> dict[str, Any]:
    """Write the baseline cases into ``folder`` with their reference results from the shipped ``device``."""
    from aimd.imaging.nifti_io import write_nifti
    from aimd.models.reference import load_reference, read_record
    from aimd.models.reference.phantomdata import HELD_OUT_SITES, build_cases, data_sha256

    folder = Path(folder)
    settings = {**SETTINGS, **overrides}
    weights = read_record(device)["weights_sha256"]
    index = folder / "baseline.json"
    if index.is_file():
        known = json.loads(index.read_text(encoding="utf-8"))
        files_ok = all(
            Path(c["file"]).is_file() and sha256_file(c["file"]) == c["sha256"] for c in known.get("cases", [])
        )
        if known.get("weights_sha256") == weights and known.get("settings") == settings and files_ok:
            return dict(known)
    folder.mkdir(parents=True, exist_ok=True)
    cases = build_cases(seed=settings["seed"], count=settings["count"], size=settings["size"], sites=HELD_OUT_SITES)
    model = load_reference(device)
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
        f"(weights SHA-256 {weights[:16]}…), aimd.models.reference",
        "device": device,
        "weights_sha256": weights,
        "settings": settings,
        "data_sha256": data_sha256(cases),
        "cases": rows,
    }
    atomic_write_json(index, baseline)
    return baseline


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
