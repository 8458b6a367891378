"""``aimd data deid``: de-identify a file, a case folder or a dataset folder (001 §7.3, §11.2).

The output keeps the folder structure. DICOM files get the PS3.15 Basic Profile, report text and JSON
the text rules (JSON spans moved), NIfTI headers are cleaned, numeric arrays and Analyze voxel files are
checked and copied, and anything that cannot be parsed or checked is reported as "not handled" and left
out; symbolic links are never followed. Images that may hold burned-in text are quarantined (left out,
reason logged) unless ``clean_pixels`` blanks the text and OCR finds none left. Every written byte is then
searched by the independent residual scan (:mod:`aimd.imaging.deid.residual`); a file with a hit is
removed and reported. Any file not written makes the exit code 1. The output is built
in a temporary folder and renamed into place; the pseudonym map is written (atomically, mode 0600) to a
path outside the output; ``deid_log.json`` in the output records the rules, options, tool versions and
per-file results, never an original identifier.

Modules: :mod:`~aimd.imaging.deid.runner.records` (options and reports),
:mod:`~aimd.imaging.deid.runner.run` (one run over the source files),
:mod:`~aimd.imaging.deid.runner.names` (output file names), :mod:`~aimd.imaging.deid.runner.path` (the entry).

Example
-------
>>> import tempfile, pathlib, shutil
>>> from pydicom.data import get_testdata_file
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> _ = shutil.copy(get_testdata_file("CT_small.dcm"), work / "in.dcm")
>>> report = deidentify_path(work / "in.dcm", work / "out", work / "map.json", salt="k")
>>> report.exit_code, sorted(p.name for p in (work / "out").iterdir())
(0, ['deid_log.json', 'in.dcm'])
"""

from aimd.imaging.deid.runner.path import deidentify_path
from aimd.imaging.deid.runner.records import LOG_NAME, DeidOptions, DeidReport, FileReport, check_paths

__all__ = ["LOG_NAME", "DeidOptions", "DeidReport", "FileReport", "check_paths", "deidentify_path"]
