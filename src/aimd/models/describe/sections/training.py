"""000 §4.3–§4.4: training data and training items, from the training record, the dataset and the provider."""

from __future__ import annotations

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections.builder import Builder, Subject
from aimd.models.targets import TARGETS


def _data(b: Builder, s: Subject, provider: ProviderInfo) -> None:
    record = s.run.record if s.run else None
    pd = provider.data
    if record is None:
        for clause, label, hint in (
            ("4.3.1", "source-task data modality", "data.acquisition_devices"),
            ("4.3.2", "data amount and splits", None),
            ("4.3.3", "data quality", "data.quality_criteria"),
        ):
            b.add(clause, "missing", label, None, "training record", hint=hint or "a training run (--run)")
        b.add(
            "4.3.4",
            "missing",
            "benchmark performance",
            None,
            "training record",
            required=False,
            hint="a training run (--run)",
        )
        return
    data = record["data"]
    synthetic = data.get("format") == "aimd-phantom-dataset"
    b.add(
        "4.3.1",
        "modality",
        "data modality",
        f"medical images: {data.get('modality')}" + (" (simulated)" if synthetic else ""),
        "training record",
    )
    devices = [
        f"{x.get('manufacturer')} {x.get('model')} ({x.get('site_id')}, simulated)" for x in data.get("sites", [])
    ]
    b.add(
        "4.3.1",
        "devices",
        "acquisition devices",
        pd.acquisition_devices or devices,
        "provider" if pd.acquisition_devices else "dataset",
        hint="data.acquisition_devices",
    )
    gen = data.get("generator") or {}
    b.add(
        "4.3.1",
        "synthetic",
        "simulated data and how it was generated",
        pd.synthetic_method
        or (
            f"yes: {gen.get('module')} {gen.get('aimd_version')} with {gen.get('params')}; "
            "anatomy, lesions, CT noise per site and radiographs projected from the CT"
            if synthetic
            else None
        ),
        "provider" if pd.synthetic_method else "dataset",
        hint="data.synthetic_method",
    )
    b.add(
        "4.3.1",
        "annotation",
        "annotation source, amount and quality",
        pd.annotation
        or (
            f"labels are the generator's exact ground truth (target {data['target']}); "
            f"{len(data.get('files', {}))} labelled files"
            if synthetic
            else None
        ),
        "provider" if pd.annotation else "dataset",
        hint="data.annotation",
    )
    st = data["statistics"]
    b.add(
        "4.3.2",
        "total",
        "total amount",
        f"{sum(v['cases'] for v in st.values())} cases, {sum(v['items'] for v in st.values())} "
        f"{'slices' if s.output_spec.task == 'segmentation' else 'images'}",
        "training record",
    )
    b.add(
        "4.3.2",
        "splits",
        "train / validation / test",
        {k: {"cases": v["cases"], "items": v["items"], "sites": v["sites"]} for k, v in st.items()},
        "training record",
    )
    b.add(
        "4.3.2",
        "distribution",
        "class distribution per split",
        {k: v["class_fraction"] for k, v in st.items()},
        "training record",
    )
    b.add("4.3.2", "differences", "distribution differences between splits", data.get("differences"), "training record")
    b.add(
        "4.3.3",
        "integrity",
        "accuracy / completeness / consistency",
        f"{len(data.get('files', {}))} files read, each matching the SHA-256 in dataset.json "
        f"(sha256 {data.get('dataset_sha256', '')[:16]}…); image and label grids checked equal",
        "training record",
    )
    b.add(
        "4.3.3",
        "criteria",
        "selection criteria and cleaning",
        pd.quality_criteria
        or ("all generated cases used; no cleaning needed (simulated, exact labels)" if synthetic else None),
        "provider" if pd.quality_criteria else "dataset",
        hint="data.quality_criteria",
    )
    b.add(
        "4.3.3",
        "standard",
        "dataset standard followed",
        pd.dataset_standard,
        "provider",
        required=False,
        hint="data.dataset_standard",
    )
    b.add(
        "4.3.3",
        "deidentification",
        "privacy protection / de-identification",
        pd.deidentification or ("simulated subjects only; no real patient data" if synthetic else None),
        "provider" if pd.deidentification else "dataset",
        hint="data.deidentification",
    )
    b.add(
        "4.3.4",
        "benchmark",
        "performance on train / validation / test",
        {k: {"metric": v["metric"], "value": v.get("dice_mean", v.get("auc"))} for k, v in record["benchmark"].items()},
        "training record",
        required=False,
    )


def _training(b: Builder, s: Subject, provider: ProviderInfo) -> None:
    record = s.run.record if s.run else None
    if record is None:
        b.add("4.4.1", "method", "learning method", None, "training record", hint="a training run (--run)")
        b.add(
            "4.4.2",
            "settings",
            "training settings",
            None,
            "training record",
            required=False,
            hint="a training run (--run)",
        )
        b.add(
            "4.4.3",
            "domain",
            "task domain",
            provider.task_domain or s.output_spec.description or None,
            "provider" if provider.task_domain else "spec",
            hint="task_domain",
        )
        return
    learning = record["learning"]
    b.add("4.4.1", "method", "learning method", learning["method"], "training record")
    this_task = f"{record['data']['target']}: {record['data']['task_domain']}"
    parent = s.run.info.get("parent") or {}
    domains = [record["data"]["task_domain"]]
    if parent.get("target") in TARGETS:
        source = TARGETS[parent["target"]]
        b.add(
            "4.4.1",
            "source_task",
            "source task (pre-training)",
            f"{source.name}: {source.domain} (run {parent.get('run_id')})",
            "training record",
        )
        b.add("4.4.1", "downstream_task", "downstream task (this fine-tuning)", this_task, "training record")
        domains.insert(0, source.domain)
    else:
        b.add("4.4.1", "source_task", "source task", this_task, "training record")
    cfg = s.run.info.get("config", {})
    b.add(
        "4.4.2",
        "augmentation",
        "data augmentation (applied counts)",
        learning["augmentation"],
        "training record",
        required=False,
    )
    b.add(
        "4.4.2",
        "initialisation",
        "weight initialisation",
        learning["initialisation"],
        "training record",
        required=False,
    )
    b.add("4.4.2", "optimizer", "optimizer", learning["optimizer"], "training record", required=False)
    b.add(
        "4.4.2",
        "hyperparameters",
        "main hyper-parameters",
        {
            "epochs_run": record["epochs_run"],
            "max_epochs": cfg.get("epochs"),
            "batch_size": learning["batch_size"],
            "schedule": learning["schedule"],
            "loss": learning["loss"],
            "early_stopping": learning["early_stopping"],
            "lora": learning.get("lora"),
            "distillation": learning.get("distillation"),
            "seed": learning["seed"],
        },
        "training record",
        required=False,
    )
    b.add(
        "4.4.3",
        "domain",
        "task domain(s)",
        provider.task_domain or domains,
        "provider" if provider.task_domain else "training record",
        hint="task_domain",
    )
