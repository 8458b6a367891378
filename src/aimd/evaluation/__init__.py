"""aimd.evaluation — quality evaluation of pre-trained models (000 §5–§6, App. A.10–A.12).

One module per characteristic, each measuring evidence and judging it against the provider's
:class:`Claims`: :class:`Description` (000 §6.2), :class:`Trainability` (§6.3.1),
:class:`Scalability` (§6.3.2), :class:`Transferability` (§6.3.3), :class:`Efficiency` (§6.3.4),
:class:`Repeatability` (§6.3.5), :class:`Robustness` (§6.3.6, A.12.2), :class:`Generalization`
(§6.3.7, A.12.1), :class:`Adversarial` (§6.3.8), :class:`Privacy` (§6.3.9, with
:class:`EgressGuard`). :func:`run_characteristics` reports every clause
of §6.2–§6.3.9 — one that is skipped, has no method yet or fails is *not evaluated* with the
reason. :func:`build_context` opens a model (any Predictor adapter) and a phantom dataset.

Example
-------
>>> from aimd.evaluation import CLAUSE_KEYS, claims_template
>>> len(CLAUSE_KEYS), "efficiency:" in claims_template()
(10, True)
"""

from aimd.evaluation.adversarial import Adversarial, physical_epsilon
from aimd.evaluation.adversarial_blackbox import BlackBoxResult, square_attack
from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import (
    ARTEFACTS,
    AdversarialClaim,
    Claims,
    DescriptionClaim,
    DPClaim,
    EfficiencyClaim,
    GeneralizationClaim,
    ModelIdentity,
    PrivacyClaim,
    RepeatabilityClaim,
    RobustnessClaim,
    ScalabilityClaim,
    TrainabilityClaim,
    TransferabilityClaim,
    claims_template,
    load_claims,
    parse_claims,
)
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.description import Description, load_description
from aimd.evaluation.efficiency import Efficiency, count_flops, forward_memory_bytes
from aimd.evaluation.egress import EgressGuard
from aimd.evaluation.evidence import CharacteristicResult, Check, Evidence, Plot, Series, Table, Verdict
from aimd.evaluation.generalization import Generalization, subgroup_test
from aimd.evaluation.loading import build_context, load_eval_data, reference_model
from aimd.evaluation.privacy import Privacy
from aimd.evaluation.privacy_dp import DPResult, dp_finetune
from aimd.evaluation.repeatability import Repeatability
from aimd.evaluation.robustness import Robustness, apply_artefact, artefact_parameters
from aimd.evaluation.runner import CHARACTERISTICS, CLAUSE_KEYS, CLAUSES, run_characteristic, run_characteristics
from aimd.evaluation.scalability import Scalability, scaling_efficiency
from aimd.evaluation.trainability import Trainability
from aimd.evaluation.transferability import Transferability

__all__ = [
    "ARTEFACTS",
    "CHARACTERISTICS",
    "CLAUSES",
    "CLAUSE_KEYS",
    "Adversarial",
    "AdversarialClaim",
    "BlackBoxResult",
    "Characteristic",
    "CharacteristicResult",
    "Check",
    "DPClaim",
    "DPResult",
    "Claims",
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
    "forward_memory_bytes",
    "load_claims",
    "load_description",
    "load_eval_data",
    "parse_claims",
    "physical_epsilon",
    "reference_model",
    "run_characteristic",
    "run_characteristics",
    "scaling_efficiency",
    "square_attack",
    "subgroup_test",
]
