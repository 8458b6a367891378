"""``aimd data``: inspect, validate, convert, phantom, deid, register."""

from __future__ import annotations

from aimd.cli import annotation, data_deid, data_fingerprint, data_imaging, data_phantom
from aimd.cli.common import new_typer

app = new_typer(
    "Imaging data: inspect, validate geometry, convert, generate phantoms, de-identify.\n\n"
    "Example: aimd data inspect scan/ --json"
)

data_imaging.register(app)
data_phantom.register(app)
data_deid.register(app)
annotation.register_data_commands(app)
data_fingerprint.register(app)
