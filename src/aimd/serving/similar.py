"""Similar reference cases: an embedding index over a reference dataset's lesions (003 §4.1.3, §5.1).

Each lesion of a reference dataset (aimd's phantom layout: ``cases/<id>/ct/`` with
``lesions.nii.gz`` instance masks and ``lesions.json``) is embedded with the model's own encoder
features: the output of the network's deepest (lowest-resolution) convolution on the lesion's
slices, averaged over the lesion's footprint at that resolution. A finding is embedded the same way
and the most similar lesions by cosine similarity are returned with their case, type and size.

Encoder features need the network's layers, so the index serves PyTorch models; for files without
them (ONNX, TorchScript) the explanation says the similar cases are not available and why.
The index records the SHA-256 of the model it was built with and refuses another model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.atomic import atomic_write_bytes
from aimd.core.errors import InvalidInputError
from aimd.models.predictor import BasePredictor
from aimd.models.preprocess import preprocess_volume


def deepest_layer(net: nn.Module, sample: torch.Tensor) -> str:
    """Name of the convolution with the smallest output (the encoder's bottleneck)."""
    from aimd.serving.explain import conv_outputs

    sizes = [(name, int(np.prod(shape[2:]))) for name, shape in conv_outputs(net, sample)]
    smallest = min(size for _, size in sizes)
    return next(name for name, size in sizes if size == smallest)


def embed(predictor: BasePredictor, inputs: NDArray[np.float32], region: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Unit-length encoder feature vector of ``region`` (``(z, y, x)``) on preprocessed ``inputs``."""
    net: nn.Module = predictor.module  # type: ignore[attr-defined]
    slices = np.nonzero(region.any(axis=(1, 2)))[0]
    multiple = max(1, predictor.input_spec.size_multiple)
    x = inputs[slices]
    h, w = x.shape[-2:]
    x = np.pad(x, [(0, 0), (0, 0), (0, (-h) % multiple), (0, (-w) % multiple)], mode="edge")
    m = np.pad(region[slices], [(0, 0), (0, (-h) % multiple), (0, (-w) % multiple)])
    name = deepest_layer(net, torch.from_numpy(x[:1]))
    feats: list[torch.Tensor] = []
    hook = dict(net.named_modules())[name].register_forward_hook(lambda _m, _i, out: feats.append(out))
    try:
        with torch.no_grad():
            net(torch.from_numpy(np.ascontiguousarray(x)))
    finally:
        hook.remove()
    f = feats[0]  # (n, c, fh, fw)
    mask = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(m[:, None].astype(np.float32)), f.shape[2:])
    vec = (f * mask).sum(dim=(0, 2, 3)) / mask.sum().clamp(min=1.0)
    vec = vec.numpy().astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


class EmbeddingIndex:
    """Lesion embeddings of a reference dataset, for one model."""

    def __init__(self, vectors: NDArray[np.float32], items: list[dict[str, Any]], model_sha256: str) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.items = items
        self.model_sha256 = model_sha256

    @classmethod
    def build(cls, predictor: BasePredictor, model_sha256: str, dataset: str | Path) -> EmbeddingIndex:
        """Embed every lesion of the phantom-layout ``dataset`` with ``predictor``'s encoder."""
        from aimd.imaging.io import read_volume
        from aimd.imaging.nifti_io import read_nifti

        if not hasattr(predictor, "module") or not isinstance(predictor.module, nn.Module):
            raise InvalidInputError(
                "the model has no PyTorch layers to take encoder features from",
                where="--model",
                hint="build the index with the training run folder of the model",
            )
        root = Path(dataset)
        vectors, items = [], []
        for case_dir in sorted((root / "cases").iterdir()):
            lesions = json.loads((case_dir / "lesions.json").read_text(encoding="utf-8"))["lesions"]
            if not lesions:
                continue
            ct = read_volume(case_dir / "ct")
            inst = np.asarray(read_nifti(case_dir / "lesions.nii.gz").array)
            inputs = preprocess_volume(ct, predictor.input_spec)
            for lesion in lesions:
                region = inst == lesion["instance"]
                if not region.any():
                    continue
                vectors.append(embed(predictor, inputs, region))
                items.append(
                    {
                        "case_id": case_dir.name,
                        "lesion_id": lesion["id"],
                        "type": lesion["type"],
                        "diameter_mm": lesion["diameter_mm"],
                        "location": lesion.get("lobe_en"),
                    }
                )
        if not vectors:
            raise InvalidInputError(
                "the dataset holds no lesions to index",
                where=str(root),
                hint="pass a phantom dataset with lesions (aimd data phantom)",
            )
        return cls(np.stack(vectors), items, model_sha256)

    def save(self, path: str | Path) -> None:
        """Write the index as one ``.npz`` (vectors + JSON items + model hash)."""
        import io

        buf = io.BytesIO()
        np.savez(
            buf, vectors=self.vectors, items=np.array(json.dumps(self.items)), model_sha256=np.array(self.model_sha256)
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingIndex:
        """Read an index written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["vectors"], json.loads(str(data["items"])), str(data["model_sha256"]))
        except (OSError, KeyError, ValueError) as err:
            raise InvalidInputError(
                f"not an aimd embedding index ({err})", where=str(path), hint="build one with `aimd serve index`"
            ) from err

    def query(self, vector: NDArray[np.float32], k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` most similar items by cosine similarity, most similar first."""
        sims = self.vectors @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims, kind="stable")[:k]
        return [{**self.items[i], "similarity": round(float(sims[i]), 4)} for i in order]

    def query_finding(
        self, model: Any, inputs: NDArray[np.float32], region: NDArray[np.bool_], k: int = 5
    ) -> dict[str, Any]:
        """Similar cases of one finding, or why there are none."""
        if not model.gradients:
            return {"available": False, "reason": f"{model.runtime} model: no encoder layers to take features from"}
        if model.sha256 != self.model_sha256:
            return {"available": False, "reason": "the index was built with another model (SHA-256 differs)"}
        return {
            "available": True,
            "method": "encoder features, cosine similarity",
            "cases": self.query(embed(model.predictor, inputs, region), k=k),
        }


__all__ = ["EmbeddingIndex", "deepest_layer", "embed"]
