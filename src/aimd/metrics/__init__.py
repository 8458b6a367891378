"""aimd.metrics — the numbers behind every aimd report.

Segmentation (Dice, IoU, pixel accuracy, precision, recall, conformity, HD, HD95, ASSD, volumes),
detection (matching, precision/recall, FPs per image, FROC, COCO AP/mAP), classification
(confusion, sensitivity, specificity, PPV, NPV, F1, ROC/AUC, thresholds), agreement (Cohen's and
weighted kappa, Fleiss' kappa, ICC, Pearson, Bland–Altman), text spans, and statistics
(bootstrap CIs, DeLong, subgroup tests). Each metric is a pure function; accumulators aggregate
datasets. Clauses: 000 App. A.10, 001 §9.1–§9.2 and App. D.

Example
-------
>>> import numpy as np
>>> from aimd.metrics import segmentation_metrics
>>> ref = np.zeros((4, 16, 16), np.uint8); ref[1:3, 4:10, 4:10] = 1
>>> m = segmentation_metrics(ref, np.roll(ref, 1, axis=2), spacing=(3.0, 0.8, 0.8))[1]
>>> round(m.dice, 4), round(m.hd, 6)
(0.8333, 0.8)
"""

from aimd.metrics.accumulators import (
    ClassificationAccumulator,
    DetectionAccumulator,
    SegmentationAccumulator,
    TextAccumulator,
    summarize,
)
from aimd.metrics.agreement import (
    BlandAltman,
    PearsonResult,
    bland_altman,
    category_order,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    kappa_from_confusion,
    pearson,
)
from aimd.metrics.classification import (
    BinaryCounts,
    RocCurve,
    ThresholdChoice,
    binary_metrics,
    binary_truth,
    choose_threshold,
    confusion_matrix,
    multiclass_accuracy,
    roc_curve,
)
from aimd.metrics.coco import COCO_IOU_THRESHOLDS, ApResult, CocoData, average_precision, load_coco
from aimd.metrics.detection import MATCHING_RULE, ImageObjects, box_iou, match_image
from aimd.metrics.detection_rates import FROC_FP_RATES, DetectionCounts, FrocResult, detection_counts, froc
from aimd.metrics.icc import ICC_FORMS, IccResult, icc
from aimd.metrics.segmentation import (
    SEGMENTATION_DEFINITIONS,
    LabelMetrics,
    OverlapCounts,
    conformity,
    conformity_classic,
    dice,
    iou,
    pixel_accuracy,
    precision,
    recall,
    segmentation_metrics,
    volume_ml,
)
from aimd.metrics.statistics import (
    BootstrapCI,
    DelongResult,
    TestResult,
    bootstrap_ci,
    chi_square_test,
    delong_auc,
    delong_test,
    mann_whitney,
    permutation_test,
    two_proportion_test,
)
from aimd.metrics.surface import (
    SURFACE_DEFINITION,
    SurfaceDistances,
    average_symmetric_surface_distance,
    foreground_boxes,
    hausdorff_distance,
    hausdorff_distance_95,
    image_diagonal_mm,
    mask_border,
    surface_distances,
)
from aimd.metrics.text import PRF, Span, SpanScores, span_scores

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "FROC_FP_RATES",
    "ICC_FORMS",
    "MATCHING_RULE",
    "PRF",
    "SEGMENTATION_DEFINITIONS",
    "SURFACE_DEFINITION",
    "ApResult",
    "BinaryCounts",
    "BlandAltman",
    "BootstrapCI",
    "ClassificationAccumulator",
    "CocoData",
    "DelongResult",
    "DetectionAccumulator",
    "DetectionCounts",
    "FrocResult",
    "IccResult",
    "ImageObjects",
    "LabelMetrics",
    "OverlapCounts",
    "PearsonResult",
    "RocCurve",
    "SegmentationAccumulator",
    "Span",
    "SpanScores",
    "SurfaceDistances",
    "TestResult",
    "TextAccumulator",
    "ThresholdChoice",
    "average_precision",
    "average_symmetric_surface_distance",
    "binary_metrics",
    "binary_truth",
    "bland_altman",
    "bootstrap_ci",
    "box_iou",
    "category_order",
    "chi_square_test",
    "choose_threshold",
    "cohen_kappa",
    "confusion_matrix",
    "conformity",
    "conformity_classic",
    "delong_auc",
    "delong_test",
    "detection_counts",
    "dice",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "foreground_boxes",
    "froc",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "icc",
    "image_diagonal_mm",
    "iou",
    "kappa_from_confusion",
    "load_coco",
    "mann_whitney",
    "mask_border",
    "match_image",
    "multiclass_accuracy",
    "pearson",
    "permutation_test",
    "pixel_accuracy",
    "precision",
    "recall",
    "roc_curve",
    "segmentation_metrics",
    "span_scores",
    "summarize",
    "surface_distances",
    "two_proportion_test",
    "volume_ml",
]
