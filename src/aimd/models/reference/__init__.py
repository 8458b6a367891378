"""Reference devices with shipped, trained weights (issue 003 §4): the models aimd serves and evaluates.

==================  ===========================================================  ==========================
name                what                                                         loader returns
==================  ===========================================================  ==========================
``device-lesions``  CT lesion segmentation: 3-D U-Net, lesion-wise post-processing  :class:`LesionSegmenter`
``device-nodules``  radiograph nodule detection: centre-point head, boxes + scores   :class:`NoduleDetector`
==================  ===========================================================  ==========================

Both loaders return :class:`~aimd.models.predictor.Predictor` objects (``input_spec``,
``output_spec``, ``predict``, ``metadata``, ``predict_volume``) with the weights' SHA-256 checked
against their run record::

    from aimd.models import load_reference
    seg = load_reference("device-lesions")
    pred = seg.predict_volume(ct)            # ct: aimd.imaging.volume.Volume in HU
    pred.labels, pred.record["lesions"]      # mask on the CT grid; lesions with scores
    det = load_reference("device-nodules")
    det.detect(dx)[0]                        # [{"box": [x0, y0, x1, y1], "score": …}, …]

Recipes retrain them from phantoms (``aimd model train --recipe NAME``), and
``aimd model zoo --verify`` re-measures the shipped metrics on a fresh held-out phantom set.

Example
-------
>>> from aimd.models.reference import RECIPES
>>> sorted(RECIPES)
['device-lesions', 'device-nodules']
"""

from __future__ import annotations

from aimd.models.reference.shipped import (
    RECIPES,
    WEIGHTS_DIR,
    get_recipe,
    load_reference,
    read_record,
    shipped_status,
    train_recipe,
    verify_reference,
)

__all__ = [
    "RECIPES",
    "WEIGHTS_DIR",
    "get_recipe",
    "load_reference",
    "read_record",
    "shipped_status",
    "train_recipe",
    "verify_reference",
]
