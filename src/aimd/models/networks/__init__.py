"""Reference networks in plain PyTorch: the 000 App. B U-Net and a 003 §2.1.1 ViT classifier."""

from aimd.models.networks.unet import ConvUnit, DecoderBlock, DoubleConv, EncoderBlock, UNetB1
from aimd.models.networks.vit import Attention, Block, Mlp, PatchEmbed, ViTClassifier

__all__ = [
    "Attention",
    "Block",
    "ConvUnit",
    "DecoderBlock",
    "DoubleConv",
    "EncoderBlock",
    "Mlp",
    "PatchEmbed",
    "UNetB1",
    "ViTClassifier",
]
