"""The 2-D U-Net of 000 App. B (Table B.1), written in plain PyTorch.

Plain torch rather than MONAI blocks, so that the module tree mirrors Table B.1 one to one and the
per-layer table aimd derives from a traced forward pass (000 §4.2.3) reads like the standard's:

* ``input``: two 3×3 convolution units; each unit is Conv2d → ReLU → BatchNorm2d → Dropout2d, in
  that order, as Table B.1 lists them (Dropout2d p = 0.5 in ``unet-b1``).
* ``encoder1`` … ``encoder5``: a double-conv unit; encoders 1–4 end with a 2×2 MaxPool2d, so the
  feature maps go 256 → 128 → 64 → 32 → 16 while channels go 32 → 512.
* ``decoder1``: ConvTranspose2d (3×3, stride 2) from encoder5; ``decoder2`` … ``decoder4``: a
  double-conv unit on [upsampled, skip] concatenation followed by the next ConvTranspose2d;
  ``decoder5``: the last double-conv unit.
* ``output``: Conv2d 3×3 → 16 channels, ReLU, Conv2d 3×3 → one channel per output class.

Differences from App. B, stated for 000 §4.2.1: the number of output channels follows the task
(App. B: 1, body); ``unet-small`` keeps the design and narrows the channels (8 … 128, Dropout2d
0.1) so it trains on 2 CPU cores in minutes.

Example
-------
>>> import torch
>>> net = UNetB1(features=(8, 16, 32, 64, 128), dropout=0.1).eval()
>>> tuple(net(torch.zeros(1, 1, 64, 64)).shape)
(1, 1, 64, 64)
"""

from __future__ import annotations

import torch
from torch import nn


class ConvUnit(nn.Sequential):
    """Conv2d 3×3 → ReLU → BatchNorm2d → Dropout2d (one row group of Table B.1)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvUnit` (Table B.1 "double_conv2D")."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__(ConvUnit(in_channels, out_channels, dropout), ConvUnit(out_channels, out_channels, dropout))


class EncoderBlock(nn.Module):
    """Double conv, then (encoders 1–4) 2×2 max pooling; returns ``(features, pooled)``."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, pool: bool) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, dropout)
        self.pool = nn.MaxPool2d(2) if pool else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.conv(x)
        return features, (self.pool(features) if self.pool is not None else features)


def _up(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """3×3 transposed convolution, stride 2: doubles height and width (Table B.1 "ConvTranspose2d")."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)


class DecoderBlock(nn.Module):
    """Double conv on ``[upsampled, skip]``, then (decoders 2–4) the next transposed convolution."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, up_to: int | None) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, dropout)
        self.up = _up(out_channels, up_to) if up_to is not None else None

    def forward(self, upsampled: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([upsampled, skip], dim=1))
        return self.up(x) if self.up is not None else x


class UNetB1(nn.Module):
    """2-D U-Net after 000 Table B.1.

    Parameters
    ----------
    in_channels:
        Input channels (1: a windowed CT slice).
    out_channels:
        One channel per output class (sigmoid: 1).
    features:
        Channels of encoders 1–5; App. B: ``(32, 64, 128, 256, 512)``.
    dropout:
        Dropout2d probability; App. B: 0.5.
    head_channels:
        Channels of the first output convolution; App. B: 16.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: tuple[int, int, int, int, int] = (32, 64, 128, 256, 512),
        dropout: float = 0.5,
        head_channels: int = 16,
    ) -> None:
        super().__init__()
        if len(features) != 5:
            raise ValueError(f"features needs 5 channel counts (encoders 1-5), got {features}")
        f0, f1, f2, f3, f4 = (int(f) for f in features)
        self.input = DoubleConv(in_channels, f0, dropout)
        self.encoder1 = EncoderBlock(f0, f0, dropout, pool=True)
        self.encoder2 = EncoderBlock(f0, f1, dropout, pool=True)
        self.encoder3 = EncoderBlock(f1, f2, dropout, pool=True)
        self.encoder4 = EncoderBlock(f2, f3, dropout, pool=True)
        self.encoder5 = EncoderBlock(f3, f4, dropout, pool=False)
        self.decoder1 = _up(f4, f3)
        self.decoder2 = DecoderBlock(2 * f3, f3, dropout, up_to=f2)
        self.decoder3 = DecoderBlock(2 * f2, f2, dropout, up_to=f1)
        self.decoder4 = DecoderBlock(2 * f1, f1, dropout, up_to=f0)
        self.decoder5 = DecoderBlock(2 * f0, f0, dropout, up_to=None)
        self.output = nn.Sequential(
            nn.Conv2d(f0, head_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, out_channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        s1, x = self.encoder1(x)
        s2, x = self.encoder2(x)
        s3, x = self.encoder3(x)
        s4, x = self.encoder4(x)
        _, x = self.encoder5(x)
        x = self.decoder1(x)
        x = self.decoder2(x, s4)
        x = self.decoder3(x, s3)
        x = self.decoder4(x, s2)
        x = self.decoder5(x, s1)
        return self.output(x)


__all__ = ["ConvUnit", "DecoderBlock", "DoubleConv", "EncoderBlock", "UNetB1"]
