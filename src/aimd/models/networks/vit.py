"""A Vision Transformer classifier with the patch embedding of 003 §2.1.1, in plain PyTorch.

* :class:`PatchEmbed`: a Conv2d whose kernel and stride equal the patch size cuts the image into
  non-overlapping patches and projects each to ``dim`` (003 §2.1.1: 512² image, 16² patches →
  1024 tokens of 768).
* A learned class token and learned position embeddings are added; ``depth`` pre-norm encoder
  blocks follow, each multi-head self-attention (one ``qkv`` Linear, scaled dot-product attention,
  ``proj`` Linear) and an MLP (``fc1`` → GELU → ``fc2``, expansion ``mlp_ratio``, 003: 4:1), each
  with a residual connection.
* The class token, layer-normed, goes to a Linear ``head`` with one logit per class.

Attention projections are separate ``nn.Linear`` modules named ``qkv`` and ``proj`` so LoRA can be
injected there (003 §3.2.1).

Example
-------
>>> import torch
>>> vit = ViTClassifier(img_size=32, patch_size=8, dim=32, depth=1, heads=2).eval()
>>> tuple(vit(torch.zeros(2, 1, 32, 32)).shape), vit.num_tokens
((2, 2), 16)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Image ``(b, c, h, w)`` → tokens ``(b, n, dim)`` by a patch-size Conv2d (003 §2.1.1)."""

    def __init__(self, img_size: int, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}")
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """``fc1`` → GELU → ``fc2``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer encoder block with two residual connections."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTClassifier(nn.Module):
    """ViT image classifier.

    Parameters
    ----------
    img_size, patch_size, in_channels:
        Square input size, patch size and channels; tokens = (img_size / patch_size)².
    num_classes:
        Logits returned per image.
    dim, depth, heads, mlp_ratio:
        Token width, encoder blocks, attention heads and MLP expansion (003 §2.1.1: 768, 24, 12, 4).
    dropout:
        Dropout in attention and MLP during training.
    """

    def __init__(
        self,
        img_size: int = 64,
        patch_size: int = 8,
        in_channels: int = 1,
        num_classes: int = 2,
        dim: int = 96,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels, dim)
        self.num_tokens = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


__all__ = ["Attention", "Block", "Mlp", "PatchEmbed", "ViTClassifier"]
