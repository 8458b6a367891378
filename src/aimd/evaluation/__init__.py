"""aimd.evaluation — quality evaluation of pre-trained models (000 §5–§6, App. A.10–A.12).

One module per characteristic under :mod:`aimd.evaluation.characteristics`, each declared once —
key, clause, claim model, applicability, ``run(context, claim) -> Evidence`` — and found by the
registry (:mod:`aimd.evaluation.registry`): :class:`Description` (000 §6.2), :class:`Trainability`
(§6.3.1), :class:`Scalability` (§6.3.2), :class:`Transferability` (§6.3.3), :class:`Efficiency`
(§6.3.4), :class:`Repeatability` (§6.3.5), :class:`Robustness` (§6.3.6, A.12.2),
:class:`Generalization` (§6.3.7, A.12.1), :class:`Adversarial` (§6.3.8), :class:`Privacy` (§6.3.9).
Helpers they share live beneath them in :mod:`aimd.evaluation.support`; no characteristic imports
another. :func:`run_characteristics` reports every clause — one that is skipped, does not apply,
or fails is *not evaluated* with the reason; a verdict is conform, nonconform, inconclusive or not
evaluated. :func:`build_context` opens a model (any Predictor adapter) and a phantom dataset;
:func:`volume_context` a third-party volume pipeline on a mask dataset.

Example
-------
>>> from aimd.evaluation import CLAUSE_KEYS, claims_template
>>> len(CLAUSE_KEYS), "efficiency:" in claims_template()
(10, True)
"""

from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.characteristics.adversarial import Adversarial, AdversarialClaim, physical_epsilon
from aimd.evaluation.characteristics.description import Description, DescriptionClaim
from aimd.evaluation.characteristics.efficiency import Efficiency, EfficiencyClaim, count_flops, forward_memory_bytes
from aimd.evaluation.characteristics.generalization import Generalization, GeneralizationClaim
from aimd.evaluation.characteristics.privacy import Privacy, PrivacyClaim
from aimd.evaluation.characteristics.repeatability import Repeatability, RepeatabilityClaim
from aimd.evaluation.characteristics.robustness import Robustness, RobustnessClaim
from aimd.evaluation.characteristics.scalability import Scalability, ScalabilityClaim, scaling_efficiency
from aimd.evaluation.characteristics.trainability import Trainability, TrainabilityClaim
from aimd.evaluation.characteristics.transferability import Transferability, TransferabilityClaim
from aimd.evaluation.claims import Claims, ModelIdentity, claims_template, load_claims, parse_claims, template_defaults
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import CharacteristicResult, Check, Evidence, Outcome, Plot, Series, Table, Verdict
from aimd.evaluation.external import named_context, parse_external, volume_context
from aimd.evaluation.loading import build_context, load_description, load_eval_data, reference_model
from aimd.evaluation.registry import CHARACTERISTICS, CLAUSE_KEYS, CLAUSES, REGISTRY
from aimd.evaluation.runner import run_characteristic, run_characteristics
from aimd.evaluation.support.artefacts import ARTEFACTS, apply_artefact, artefact_parameters
from aimd.evaluation.support.blackbox import BlackBoxResult, square_attack
from aimd.evaluation.support.dp import DPClaim, DPResult, dp_finetune
from aimd.evaluation.support.egress import EgressGuard, egress_scope
from aimd.evaluation.support.stats import min_attainable_p, paired_difference, subgroup_test

__all__ = [
    "ARTEFACTS",
    "CHARACTERISTICS",
    "CLAUSES",
    "CLAUSE_KEYS",
    "REGISTRY",
    "Adversarial",
    "AdversarialClaim",
    "Applicability",
    "BlackBoxResult",
    "Characteristic",
    "CharacteristicResult",
    "Check",
    "ClaimModel",
    "Claims",
    "DPClaim",
    "DPResult",
    "Description",
    "DescriptionClaim",
    "EgressGuard",
    "Efficiency",
    "EfficiencyClaim",
    "EvalData",
    "EvaluationContext",
    "Evidence",
    "Generalization",
    "GeneralizationClaim",
    "ModelIdentity",
    "Outcome",
    "Plot",
    "Privacy",
    "PrivacyClaim",
    "Repeatability",
    "RepeatabilityClaim",
    "Robustness",
    "RobustnessClaim",
    "Scalability",
    "ScalabilityClaim",
    "Series",
    "Table",
    "Trainability",
    "TrainabilityClaim",
    "Transferability",
    "TransferabilityClaim",
    "Verdict",
    "apply_artefact",
    "artefact_parameters",
    "build_context",
    "claims_template",
    "count_flops",
    "dp_finetune",
    "egress_scope",
    "forward_memory_bytes",
    "load_claims",
    "load_description",
    "load_eval_data",
    "min_attainable_p",
    "named_context",
    "paired_difference",
    "parse_claims",
    "parse_external",
    "physical_epsilon",
    "reference_model",
    "run_characteristic",
    "run_characteristics",
    "scaling_efficiency",
    "square_attack",
    "subgroup_test",
    "template_defaults",
    "volume_context",
]
