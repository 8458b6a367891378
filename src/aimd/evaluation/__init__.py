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

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.evaluation.base": ["Applicability", "Characteristic", "ClaimModel"],
        "aimd.evaluation.characteristics.adversarial": ["Adversarial", "AdversarialClaim", "physical_epsilon"],
        "aimd.evaluation.characteristics.description": ["Description", "DescriptionClaim"],
        "aimd.evaluation.characteristics.efficiency": [
            "Efficiency",
            "EfficiencyClaim",
            "count_flops",
            "forward_memory_bytes",
        ],
        "aimd.evaluation.characteristics.generalization": ["Generalization", "GeneralizationClaim"],
        "aimd.evaluation.characteristics.privacy": ["Privacy", "PrivacyClaim"],
        "aimd.evaluation.characteristics.repeatability": ["Repeatability", "RepeatabilityClaim"],
        "aimd.evaluation.characteristics.robustness": ["Robustness", "RobustnessClaim"],
        "aimd.evaluation.characteristics.scalability": ["Scalability", "ScalabilityClaim", "scaling_efficiency"],
        "aimd.evaluation.characteristics.trainability": ["Trainability", "TrainabilityClaim"],
        "aimd.evaluation.characteristics.transferability": ["Transferability", "TransferabilityClaim"],
        "aimd.evaluation.claims": [
            "Claims",
            "ModelIdentity",
            "claims_template",
            "load_claims",
            "parse_claims",
            "template_defaults",
        ],
        "aimd.evaluation.context": ["EvalData", "EvaluationContext"],
        "aimd.evaluation.evidence": [
            "CharacteristicResult",
            "Check",
            "Evidence",
            "Outcome",
            "Plot",
            "Series",
            "Table",
            "Verdict",
        ],
        "aimd.evaluation.external": ["named_context", "parse_external", "volume_context"],
        "aimd.evaluation.loading": ["build_context", "load_description", "load_eval_data", "reference_model"],
        "aimd.evaluation.registry": ["CHARACTERISTICS", "CLAUSE_KEYS", "CLAUSES", "REGISTRY"],
        "aimd.evaluation.runner": ["check_selection", "run_characteristic", "run_characteristics"],
        "aimd.evaluation.support.artefacts": ["ARTEFACTS", "apply_artefact", "artefact_parameters"],
        "aimd.evaluation.support.blackbox": ["BlackBoxResult", "square_attack"],
        "aimd.evaluation.support.dp": ["DPClaim", "DPResult", "dp_finetune"],
        "aimd.evaluation.support.egress": ["EgressGuard", "egress_scope"],
        "aimd.evaluation.support.stats": ["min_attainable_p", "paired_difference", "subgroup_test"],
    },
)

__all__ = [
    "check_selection",
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
