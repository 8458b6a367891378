"""The provider's claims (000 §5.2): one schema-validated YAML document per model.

000 §5.2.x asks the provider to *claim* each quality characteristic; 000 §6.3.x checks the claim
against measurement. :class:`Claims` is that declaration: metric targets, tolerances, hardware
and perturbation levels. A section left out means "no claim": the characteristic is still
measured, but its verdict is *not evaluated* with that reason.

Example
-------
>>> c = parse_claims("efficiency:\\n  max_latency_p95_ms: 50\\n", where="x.yaml")
>>> c.efficiency.max_latency_p95_ms, c.repeatability is None
(50.0, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

from aimd.core.errors import InvalidInputError, SchemaError

ARTEFACTS = ("noise", "bias_field", "motion", "ghosting", "spike", "blur")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelIdentity(_Strict):
    """Who provides which model (000 A.3)."""

    name: str = ""
    version: str = ""
    provider: str = ""


class DescriptionClaim(_Strict):
    """000 §6.2: the model description is complete and accurate."""

    max_missing_items: int = Field(0, ge=0, description="required §4 items allowed to be missing")
    parameters: int | None = Field(None, ge=0, description="parameter count stated in the description")
    input_shape: list[int] | None = Field(None, description="stated network input shape, -1 for batch")
    output_channels: int | None = Field(None, ge=1, description="stated output channels")


class TrainabilityClaim(_Strict):
    """000 §5.2.1 / §6.3.1: the model keeps optimising under the provider's training settings."""

    settings: dict[str, Any] = Field(default_factory=lambda: {"epochs": 3, "max_steps_per_epoch": 4, "lr": 1e-3},
                                     description="aimd model train settings (TrainConfig fields) to train with")
    min_relative_improvement: float = Field(0.1, ge=0, le=1, description="(first − last) / first training loss")
    divergence_tolerance: float = Field(0.5, ge=0, description="last loss may exceed the first by this fraction")
    plateau_window: int = Field(2, ge=2, description="epochs over which a plateau is measured")
    plateau_tolerance: float = Field(0.01, ge=0, description="relative loss change that counts as a plateau")
    require_plateau: bool = Field(False, description="the loss must have plateaued by the last epoch")


class TransferabilityClaim(_Strict):
    """000 §5.2.3 / §6.3.3, A.10: performance after fine-tuning on the downstream task.

    The defaults are the claim aimd makes for its body-outline reference model (000 B.1.5.3):
    fine-tuned on multi-organ segmentation with half of the downstream training cases (000
    B.1.6.4) for 160 steps, full fine-tuning reaches a mean Dice of at least 0.65 and is
    non-inferior to the same network trained from random weights on the same cases and steps
    (paired gain ≥ −0.02 Dice); LoRA (rank 4, under 3 % of the weights trainable) reaches at least
    0.40. ``min_metric`` and ``min_gain_over_scratch`` take one number for every method or a
    mapping method → number.

    Example
    -------
    >>> c = TransferabilityClaim(min_metric={"full": 0.7}, min_gain_over_scratch=0.0)
    >>> c.metric_floor("full"), c.metric_floor("lora"), c.gain_floor("lora")
    (0.7, None, 0.0)
    """

    target: str = Field("organs", description="downstream target (aimd.models.TARGETS)")
    settings: dict[str, Any] = Field(
        default_factory=lambda: {"case_fraction": 0.5, "epochs": 2, "max_steps_per_epoch": 80, "batch_size": 8,
                                 "lr": 3e-3, "t0": 2, "augment": []},
        description="aimd model train settings for every fine-tune and the from-scratch baseline")
    methods: list[Literal["full", "lora"]] = Field(default_factory=lambda: ["full", "lora"])
    lora_rank: int = Field(4, ge=1)
    min_metric: float | dict[Literal["full", "lora"], float] | None = Field(
        default_factory=lambda: {"full": 0.65, "lora": 0.4},
        description="A.10 metric after fine-tuning: one value for every method or method → value")
    min_gain_over_scratch: float | dict[Literal["full", "lora"], float] | None = Field(
        default_factory=lambda: {"full": -0.02},
        description="fine-tuned minus from-scratch metric (mean paired per-case difference); < 0: non-inferiority")

    @model_validator(mode="after")
    def _metric_in_range(self) -> TransferabilityClaim:
        value = self.min_metric
        values = [] if value is None else list(value.values()) if isinstance(value, dict) else [value]
        if any(not 0 <= v <= 1 for v in values):
            raise ValueError(f"min_metric must lie in [0, 1], got {value}")
        return self

    @staticmethod
    def _of(value: float | dict[Literal["full", "lora"], float] | None, method: str) -> float | None:
        if isinstance(value, dict):
            return next((v for k, v in value.items() if k == method), None)
        return value

    def metric_floor(self, method: str) -> float | None:
        """The claimed minimum metric of ``method`` (``None``: no claim)."""
        return self._of(self.min_metric, method)

    def gain_floor(self, method: str) -> float | None:
        """The claimed minimum gain of ``method`` over from scratch (``None``: no claim)."""
        return self._of(self.min_gain_over_scratch, method)


class ScalabilityClaim(_Strict):
    """000 §5.2.2 / §6.3.2, A.11: efficiency as resources grow; minimum configuration."""

    thread_counts: list[int] = Field(default_factory=lambda: [1, 2], description="CPU threads to try")
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4, 16])
    runs: int = Field(5, ge=1, le=1000)
    min_images_per_s: float | None = Field(None, gt=0, description="throughput the minimum configuration reaches")
    max_latency_ms: float | None = Field(None, gt=0, description="batch latency the minimum configuration meets")
    min_scaling_efficiency: float | None = Field(None, gt=0, le=1.5,
                                                 description="throughput(n) / (n · throughput(1))")


class EfficiencyClaim(_Strict):
    """000 §5.2.4 e–g / §6.3.4 a–c: compute, memory, storage and latency."""

    max_gflops: float | None = Field(None, gt=0, description="forward-pass GFLOP per sample")
    max_parameters: int | None = Field(None, gt=0)
    max_memory_mb: float | None = Field(None, gt=0, description="parameters + activations of one forward pass")
    max_size_mb: float | None = Field(None, gt=0, description="model file size on disk")
    max_latency_p95_ms: float | None = Field(None, gt=0, description="p95 latency of one batch")
    batch_size: int = Field(1, ge=1)
    runs: int = Field(20, ge=3, le=10000)
    threads: int = Field(2, ge=1)
    int8: bool = Field(True, description="also measure ONNX fp32 and dynamic INT8 configurations")
    max_int8_metric_drop: float | None = Field(None, ge=0, description="allowed metric drop fp32 → INT8")


class RepeatabilityClaim(_Strict):
    """000 §5.2.5 / §6.3.5: identical inputs give the same quantitative output."""

    repeats: int = Field(5, ge=2, le=1000)
    max_abs_deviation: float = Field(1e-6, ge=0, description="same runtime, same threads")
    thread_counts: list[int] = Field(default_factory=lambda: [1, 2])
    max_thread_deviation: float = Field(1e-4, ge=0, description="across thread counts")
    runtimes: list[Literal["torch", "onnx"]] = Field(default_factory=lambda: ["torch", "onnx"])
    max_runtime_deviation: float = Field(1e-3, ge=0, description="probabilities, torch vs ONNX Runtime")
    max_label_disagreement: float = Field(0.001, ge=0, le=1, description="fraction of pixels/images")


class RobustnessClaim(_Strict):
    """000 §5.2.6 h–i / §6.3.6, A.12.2 a–b."""

    artefacts: list[Literal["noise", "bias_field", "motion", "ghosting", "spike", "blur"]] = Field(
        default_factory=lambda: list(ARTEFACTS))
    severities: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0],
                                    description="graded severities in (0, 1]; 1 is the strongest level")
    claimed_severity: float = Field(0.5, gt=0, le=1, description="severity up to which the claim holds")
    sample_images: int = Field(96, ge=2, description="test images perturbed, evenly spaced over all cases")
    max_metric_drop: float = Field(0.1, ge=0, description="allowed absolute drop of the metric")
    ood_must_flag: list[Literal["other_modality", "wrong_spacing", "corrupted", "unpreprocessed",
                                "other_body_part"]] = Field(
        default_factory=lambda: ["other_modality", "wrong_spacing", "corrupted", "unpreprocessed"],
        description="out-of-distribution kinds the model's input checks reject (5.2.6 i)")
    mixed_fraction: float = Field(0.25, gt=0, lt=1, description="share of unqualified samples mixed in")
    max_mixed_metric_drop: float = Field(0.1, ge=0,
                                         description="drop on the qualified samples when unqualified are mixed in")


class GeneralizationClaim(_Strict):
    """000 §5.2.7 / §6.3.7, A.12.1 a–b."""

    min_metric: float = Field(..., ge=0, le=1, description="baseline on the held-out test set")
    subgroup_by: list[Literal["site"]] = Field(default_factory=lambda: ["site"])
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the subgroup test")
    stress_min_metric: float | None = Field(None, ge=0, le=1,
                                            description="baseline on stress samples (small targets)")
    stress_quantile: float = Field(0.25, gt=0, lt=1,
                                   description="cases whose target size is below this quantile are stress")


class AdversarialClaim(_Strict):
    """000 §5.2.8 / §6.3.8: performance under white-box (FGSM, PGD) and black-box (Square) attacks."""

    attacks: list[Literal["fgsm", "pgd", "square"]] = Field(
        default_factory=lambda: ["fgsm", "pgd", "square"],
        description="fgsm, pgd: white-box (gradients); square: black-box (output probabilities only)")
    epsilons: list[PositiveFloat] = Field(default_factory=lambda: [0.002, 0.005, 0.01, 0.02],
                                          description="attack budgets in normalised input units")
    claimed_epsilon: float = Field(0.005, gt=0, description="budget up to which the claim holds")
    max_metric_drop: float = Field(0.1, ge=0, description="allowed metric drop up to the claimed budget (each attack)")
    pgd_steps: int = Field(5, ge=1, le=1000)
    square_iterations: int = Field(30, ge=1, le=10000,
                                   description="Square Attack updates per budget (~one model query per image each)")
    square_p_init: float = Field(0.3, gt=0, lt=1, description="image share the first Square Attack squares cover")
    sample_images: int = Field(16, ge=2, description="test images attacked, evenly spaced over all cases")


class DPClaim(_Strict):
    """000 §5.2.9 a: DP-SGD (opacus) fine-tuning of a copy of the model on the training images."""

    epsilon_target: float | None = Field(8.0, gt=0, description="ε the DP fine-tune may spend at delta (checked); "
                                         "sets the noise when noise_multiplier is null")
    delta: float = Field(1e-5, gt=0, lt=1, description="δ of the (ε, δ) guarantee")
    noise_multiplier: float | None = Field(None, ge=0, description="Gaussian noise std / max_grad_norm "
                                           "(null: the smallest noise that keeps ε within epsilon_target)")
    max_grad_norm: float = Field(1.0, gt=0, description="per-sample gradient clipping bound")
    epochs: int = Field(2, ge=1, le=1000)
    batch_size: int = Field(16, ge=1, description="expected batch size (Poisson sampling)")
    lr: float = Field(0.01, gt=0, description="SGD learning rate")
    batchnorm: Literal["freeze", "group_norm"] = Field(
        "freeze", description="freeze: BatchNorm kept in eval mode, not trained; group_norm: replaced (opacus fix)")
    from_scratch: bool = Field(False, description="re-initialise the copy, so ε covers every weight update")
    max_utility_drop: float | None = Field(None, ge=0, description="allowed A.10 metric drop of the DP model")

    @model_validator(mode="after")
    def _noise_or_target(self) -> DPClaim:
        if self.noise_multiplier is None and self.epsilon_target is None:
            raise ValueError("give noise_multiplier or epsilon_target (the noise is then derived from it)")
        return self


class PrivacyClaim(_Strict):
    """000 §5.2.9 a–b / §6.3.9: no membership leakage, no data upload, optionally a DP-SGD fine-tune."""

    max_membership_auc: float = Field(0.6, ge=0.5, le=1, description="ROC AUC of a membership-inference attack")
    forbid_egress: bool = Field(True, description="no network connection during the evaluation (5.2.9 b)")
    sample_images: int = Field(64, ge=4, description="images per group (members / non-members)")
    dp: DPClaim | None = Field(None, description="DP-SGD fine-tune of a copy on the member images (5.2.9 a)")


class Claims(_Strict):
    """The provider's declaration for one model (000 §5.2)."""

    model: ModelIdentity = Field(default_factory=ModelIdentity)
    hardware: str = Field("", description="hardware the claims hold on (000 §4.5.3)")
    seed: int = 0
    bootstrap_resamples: int = Field(1000, ge=100)
    description: DescriptionClaim | None = None
    trainability: TrainabilityClaim | None = None
    scalability: ScalabilityClaim | None = None
    efficiency: EfficiencyClaim | None = None
    repeatability: RepeatabilityClaim | None = None
    transferability: TransferabilityClaim | None = None
    robustness: RobustnessClaim | None = None
    generalization: GeneralizationClaim | None = None
    adversarial: AdversarialClaim | None = None
    privacy: PrivacyClaim | None = None


def parse_claims(text: str, *, where: str) -> Claims:
    """Parse and validate claims YAML, naming the file and field on error.

    Raises
    ------
    SchemaError
        Invalid YAML, an unknown section or field, or a value of the wrong type or range.
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise SchemaError(f"claims are not valid YAML: {err}", where=where,
                          hint="see `aimd evaluate claims-template`") from err
    if not isinstance(data, dict):
        raise SchemaError(f"claims must be a mapping of sections, got {type(data).__name__}", where=where,
                          hint="see `aimd evaluate claims-template`")
    try:
        return Claims.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SchemaError(f"claims field {field!r}: {first['msg']} (got {first.get('input')!r})", where=where,
                          hint="see `aimd evaluate claims-template` for every field") from err


def load_claims(path: str | Path) -> Claims:
    """Read a claims YAML file.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"; _ = p.write_text("seed: 3\\n")
    >>> load_claims(p).seed
    3
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("claims file does not exist", where=str(p),
                                hint="write one from `aimd evaluate claims-template`")
    return parse_claims(p.read_text(encoding="utf-8"), where=str(p))


def _optional_section(annotation: Any) -> type[BaseModel] | None:
    """The claim model inside an ``X | None`` annotation, if any."""
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _comment_block(model: type[BaseModel], indent: str) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        default: Any = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            continue
        note = f"  # {field.description}" if field.description else ""
        value = "REQUIRED" if field.is_required() else yaml.safe_dump(default, default_flow_style=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{indent}{name}: {value}{note}")
        nested = _optional_section(field.annotation) if default is None else None
        if nested is not None:
            lines.append(f"{indent}# to ask for it, replace the null above with (defaults shown):")
            lines.extend(f"{indent}# {ln}" for ln in [f"{name}:", *_comment_block(nested, "  ")])
    return lines


def claims_template() -> str:
    """A commented YAML template listing every section and field with its default.

    Example
    -------
    >>> "robustness:" in claims_template()
    True
    """
    sections = {"description": (DescriptionClaim, "000 §6.2 model description"),
                "trainability": (TrainabilityClaim, "000 §5.2.1 / §6.3.1 trainability"),
                "transferability": (TransferabilityClaim, "000 §5.2.3 / §6.3.3 transferability, A.10"),
                "scalability": (ScalabilityClaim, "000 §5.2.2 / §6.3.2 architecture scalability, A.11"),
                "efficiency": (EfficiencyClaim, "000 §5.2.4 / §6.3.4 model efficiency"),
                "repeatability": (RepeatabilityClaim, "000 §5.2.5 / §6.3.5 output repeatability"),
                "robustness": (RobustnessClaim, "000 §5.2.6 / §6.3.6 robustness, A.12.2"),
                "generalization": (GeneralizationClaim, "000 §5.2.7 / §6.3.7 generalization, A.12.1"),
                "adversarial": (AdversarialClaim, "000 §5.2.8 / §6.3.8 adversarial security"),
                "privacy": (PrivacyClaim, "000 §5.2.9 / §6.3.9 privacy protection")}
    out = ["# aimd claims: the provider's declaration per quality characteristic (000 §5.2).",
           "# Remove a section to make no claim: it is then measured but reported as not evaluated.",
           "model:", '  name: ""', '  version: ""', '  provider: ""',
           'hardware: "2 CPU cores"  # where the claims hold (000 §4.5.3)', "seed: 0",
           "bootstrap_resamples: 1000"]
    for key, (model, title) in sections.items():
        out.append(f"# {title}")
        out.append(f"{key}:")
        block = _comment_block(model, "  ")
        if key == "generalization":
            block = [ln.replace("min_metric: REQUIRED", "min_metric: 0.5") for ln in block]
        out.extend(block)
    return "\n".join(out) + "\n"


__all__ = [
    "ARTEFACTS",
    "AdversarialClaim",
    "Claims",
    "DPClaim",
    "DescriptionClaim",
    "EfficiencyClaim",
    "GeneralizationClaim",
    "ModelIdentity",
    "PrivacyClaim",
    "RepeatabilityClaim",
    "RobustnessClaim",
    "ScalabilityClaim",
    "TrainabilityClaim",
    "TransferabilityClaim",
    "claims_template",
    "load_claims",
    "parse_claims",
]
