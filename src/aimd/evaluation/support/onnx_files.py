"""ONNX fp32 and dynamic INT8 copies of the model under evaluation, exported once per evaluation.

Efficiency (000 §6.3.4 c) times them; repeatability (000 §6.3.5) compares the fp32 copy's output
with PyTorch's. The copies are written under the evidence folder and remembered in the context.

Example
-------
>>> ONNX_CONFIGS
('onnx_fp32', 'onnx_int8_dynamic')
"""

from __future__ import annotations

from pathlib import Path

from aimd.evaluation.context import EvaluationContext

ONNX_CONFIGS = ("onnx_fp32", "onnx_int8_dynamic")


def export_onnx_configs(ctx: EvaluationContext) -> dict[str, Path]:
    """ONNX fp32 and dynamic INT8 copies of ``ctx.network`` (``{}`` without a torch module)."""
    if ctx.onnx_files:
        return dict(ctx.onnx_files)
    if ctx.network is None:
        return {}
    from aimd.models.export import export_module_onnx, quantize_onnx

    folder = ctx.evidence_dir / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = export_module_onnx(
        ctx.network.eval(),
        folder / "model_fp32.onnx",
        ctx.predictor.input_spec,
        ctx.predictor.output_spec,
        exporter="torchscript",
    )
    int8 = quantize_onnx(Path(fp32), folder / "model_int8_dynamic.onnx", "dynamic")
    ctx.onnx_files.update({"onnx_fp32": Path(fp32), "onnx_int8_dynamic": Path(int8)})
    return dict(ctx.onnx_files)


__all__ = ["ONNX_CONFIGS", "export_onnx_configs"]
