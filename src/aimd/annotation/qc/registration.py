"""Level-1 registration checks (001 §7.2 h, §8.5.1.3, §8.5.1.4).

Every registration names images of the package, states its error, and a distance error above the
threshold (3–5 mm, default 3 mm) sends it back for adjustment.

Example
-------
>>> from aimd.annotation.qc.context import QCContext
>>> ctx = QCContext.for_package({"task_id": "T", "image": {"uid": "1", "modality": "CT", "shape": [8, 8, 4],
...     "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "registrations": [{"id": "R", "fixed_image": "1", "moving_image": "1", "transform_file": "t.tfm",
...         "algorithm": "rigid", "software": "SimpleITK", "software_version": "2.5",
...         "error": {"metric": "tre_mm", "value": 4.2, "unit": "mm"}}],
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> [f.code for f in check_registrations(ctx)]
['REGISTRATION_ERROR_HIGH']
"""

from __future__ import annotations

from aimd.annotation.qc.context import QCContext
from aimd.core.findings import Finding

__all__ = ["check_registrations"]


def check_registrations(ctx: QCContext) -> list[Finding]:
    """Registration images known, error present, distance error within the limit."""
    pkg = ctx.package
    uids = {im.uid for im in pkg.images()}
    limit = ctx.config.registration_max_error_mm
    out = []
    for reg in pkg.registrations:
        for role, uid in (("fixed", reg.fixed_image), ("moving", reg.moving_image)):
            if uid not in uids:
                out.append(
                    ctx.finding(
                        "REGISTRATION_IMAGE_UNKNOWN",
                        "error",
                        "001 §8.5.1.4",
                        f"{role} image {uid!r} of registration {reg.id} is not in the package",
                        "add it to related_images or fix the uid",
                        registration=reg.id,
                    )
                )
        err = reg.error
        if err is None:
            out.append(
                ctx.finding(
                    "REGISTRATION_ERROR_MISSING",
                    "error",
                    "001 §7.2 h",
                    f"registration {reg.id} states no error",
                    "record the landmark TRE or a similarity metric (`aimd data register` does)",
                    registration=reg.id,
                )
            )
        elif (err.unit or "").lower() == "mm":
            if err.value > limit:
                out.append(
                    ctx.finding(
                        "REGISTRATION_ERROR_HIGH",
                        "error",
                        "001 §8.5.1.3",
                        f"registration {reg.id} error {err.metric} = {err.value:.2f} mm exceeds {limit:g} mm",
                        "re-run or adjust the registration before annotating",
                        registration=reg.id,
                        error_mm=err.value,
                    )
                )
        else:
            out.append(
                ctx.finding(
                    "REGISTRATION_ERROR_NOT_DISTANCE",
                    "warning",
                    "001 §8.5.1.3",
                    f"registration {reg.id} error is {err.metric} (not a distance), so the "
                    f"{limit:g} mm limit cannot be applied",
                    "add landmarks to measure TRE in mm",
                    registration=reg.id,
                )
            )
    return out
