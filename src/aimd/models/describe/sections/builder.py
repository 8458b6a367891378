"""The description's clause titles, the described model (:class:`Subject`) and the item collector (:class:`Builder`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from aimd.models.runs import Run
from aimd.models.specs import InputSpec, OutputSpec
from aimd.models.zoo import ZooEntry

TITLES = {
    "4.1": "概述 Overview",
    "4.2.1": "模型结构 Model structure",
    "4.2.2": "模型节点 Model nodes",
    "4.2.3": "模型参数 Model parameters",
    "4.2.4": "模型数据表示 Data representation",
    "4.2.5": "模型可解释性 Interpretability",
    "4.3.1": "数据模态 Data modality",
    "4.3.2": "数据量 Data amount",
    "4.3.3": "数据质量 Data quality",
    "4.3.4": "基准性能 Benchmark performance",
    "4.4.1": "学习方法 Learning method",
    "4.4.2": "训练设置 Training settings",
    "4.4.3": "任务域 Task domain",
    "4.5.1": "适用数据模态 Applicable modalities",
    "4.5.2": "适用任务类型 Applicable task types",
    "4.5.3": "适用环境 Environment",
    "4.5.4": "下游任务训练需求 Downstream training needs",
}


@dataclass
class Subject:
    """The model being described and what is known about it."""

    name: str
    kind: str
    network: nn.Module
    input_spec: InputSpec
    output_spec: OutputSpec
    entry: ZooEntry | None = None
    run: Run | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Builder:
    """Collects items per clause and the gaps."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {k: {"title": v, "items": {}} for k, v in TITLES.items()}
        self.gaps: list[dict[str, Any]] = []

    def add(
        self,
        clause: str,
        key: str,
        label: str,
        value: Any,
        source: str,
        *,
        required: bool = True,
        hint: str | None = None,
    ) -> None:
        """Record one item; a missing value becomes a gap naming the provider YAML key ``hint``."""
        empty = value is None or value == "" or value == [] or value == {}
        if empty:
            self.gaps.append(
                {
                    "clause": f"000 §{clause}",
                    "item": label,
                    "required": required,
                    "hint": f"state it in the provider YAML as {hint}"
                    if hint
                    else "not derivable from the model; state it in the provider YAML",
                }
            )
            return
        self.sections[clause]["items"][key] = {"label": label, "value": value, "source": source}
