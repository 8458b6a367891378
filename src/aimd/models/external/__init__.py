"""aimd.models.external — third-party pre-trained models described and run through aimd's adapters.

:mod:`~aimd.models.external.pipeline` holds the shared pieces (an adapter for TorchScript networks
that end in a softmax, RAS orientation, nearest resampling, mask clean-up, the prepared-volume
record); :mod:`~aimd.models.external.describe` derives a 000 §4 description from a TorchScript
archive; :mod:`~aimd.models.external.deepbet` is deepbet (PyPI ``deepbet``, T1 brain extraction).

Example
-------
>>> deepbet_specs(grid=192)[0].patch_size
(192, 192, 192)
"""

from aimd.models.external.deepbet import (
    GRID,
    INSTALL_HINT,
    PINNED_VERSION,
    BrainExtraction,
    DeepBet,
    DeepBetFiles,
    bbox_specs,
    brain_box,
    deepbet_normalise,
    deepbet_specs,
    describe_deepbet,
    find_deepbet,
)
from aimd.models.external.describe import describe_torchscript, graph_counts, module_types
from aimd.models.external.pipeline import (
    Orientation,
    PreparedVolume,
    ProbabilityOutputPredictor,
    VolumePipeline,
    fill_holes,
    largest_component,
    resize_nearest,
)

__all__ = [
    "GRID",
    "INSTALL_HINT",
    "PINNED_VERSION",
    "BrainExtraction",
    "DeepBet",
    "DeepBetFiles",
    "Orientation",
    "PreparedVolume",
    "ProbabilityOutputPredictor",
    "VolumePipeline",
    "bbox_specs",
    "brain_box",
    "deepbet_normalise",
    "deepbet_specs",
    "describe_deepbet",
    "describe_torchscript",
    "fill_holes",
    "find_deepbet",
    "graph_counts",
    "largest_component",
    "module_types",
    "resize_nearest",
]
