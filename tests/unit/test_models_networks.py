"""Reference networks: structure of 000 Table B.1 and 003 §2.1.1, checked against hand-derived counts."""

from __future__ import annotations

import pytest
import torch

from aimd.core.errors import InvalidInputError
from aimd.models.networks import PatchEmbed, UNetB1, ViTClassifier
from aimd.models.zoo import ZOO, build_network, get_entry


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _double(cin: int, cout: int) -> int:
    # Conv → ReLU → BatchNorm (2 params per channel) → Dropout, twice (Table B.1)
    return _conv(cin, cout, 3) + 2 * cout + _conv(cout, cout, 3) + 2 * cout


def unet_params(in_ch: int, out_ch: int, f: tuple[int, ...], head: int) -> int:
    """Parameter count written out from Table B.1's layer list."""
    f0, f1, f2, f3, f4 = f
    encoders = (
        _double(in_ch, f0) + _double(f0, f0) + _double(f0, f1) + _double(f1, f2) + _double(f2, f3) + _double(f3, f4)
    )
    ups = _conv(f4, f3, 3) + _conv(f3, f2, 3) + _conv(f2, f1, 3) + _conv(f1, f0, 3)  # 3×3 ConvTranspose2d
    decoders = _double(2 * f3, f3) + _double(2 * f2, f2) + _double(2 * f1, f1) + _double(2 * f0, f0)
    return encoders + ups + decoders + _conv(f0, head, 3) + _conv(head, out_ch, 3)


def vit_params(in_ch: int, img: int, patch: int, dim: int, depth: int, classes: int, mlp: int = 4) -> int:
    tokens = (img // patch) ** 2
    embed = in_ch * dim * patch * patch + dim + dim + (tokens + 1) * dim
    block = (
        2 * (2 * dim)
        + (dim * 3 * dim + 3 * dim)
        + (dim * dim + dim)
        + (dim * mlp * dim + mlp * dim)
        + (mlp * dim * dim + dim)
    )
    return embed + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize("name", ["unet-b1", "unet-small"])
def test_unet_parameter_count_matches_table_b1_derivation(name: str) -> None:
    entry = get_entry(name)
    with torch.device("meta"):
        net = build_network(name, out_channels=1)
    expected = unet_params(entry.input_spec.channels, 1, entry.kwargs["features"], entry.kwargs["head_channels"])
    assert sum(p.numel() for p in net.parameters()) == expected


def test_unet_b1_feature_map_sizes_follow_table_b1() -> None:
    net = UNetB1(features=(32, 64, 128, 256, 512), dropout=0.5).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for name in ("encoder1", "encoder2", "encoder3", "encoder4", "encoder5"):
        getattr(net, name).conv.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
    for name in ("decoder2", "decoder3", "decoder4", "decoder5"):
        getattr(net, name).conv.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
    net = net.to("meta")
    out = net(torch.empty(1, 1, 256, 256, device="meta"))
    # Table B.1 "输出的大小" column (batch replaced by 1)
    assert shapes["encoder1"] == (1, 32, 256, 256)
    assert shapes["encoder2"] == (1, 64, 128, 128)
    assert shapes["encoder3"] == (1, 128, 64, 64)
    assert shapes["encoder4"] == (1, 256, 32, 32)
    assert shapes["encoder5"] == (1, 512, 16, 16)
    assert shapes["decoder2"] == (1, 256, 32, 32)
    assert shapes["decoder3"] == (1, 128, 64, 64)
    assert shapes["decoder4"] == (1, 64, 128, 128)
    assert shapes["decoder5"] == (1, 32, 256, 256)
    assert tuple(out.shape) == (1, 1, 256, 256)


def test_unet_conv_unit_order_is_conv_relu_bn_dropout() -> None:
    unit = UNetB1(features=(4, 4, 4, 4, 4), dropout=0.5).input[0]
    assert [type(m).__name__ for m in unit] == ["Conv2d", "ReLU", "BatchNorm2d", "Dropout2d"]
    assert unit[3].p == 0.5 and unit[0].kernel_size == (3, 3)


def test_patch_embedding_of_003_gives_1024_tokens_of_768() -> None:
    embed = PatchEmbed(img_size=512, patch_size=16, in_channels=1, dim=768).to("meta")
    assert tuple(embed(torch.empty(1, 1, 512, 512, device="meta")).shape) == (1, 1024, 768)


@pytest.mark.parametrize("name", ["vit-small", "vit-b16-512"])
def test_vit_parameter_count_matches_hand_count(name: str) -> None:
    k = get_entry(name).kwargs
    with torch.device("meta"):
        net = build_network(name, out_channels=2)
    expected = vit_params(1, k["img_size"], k["patch_size"], k["dim"], k["depth"], 2)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_vit_b16_512_is_the_003_configuration() -> None:
    k = get_entry("vit-b16-512").kwargs
    assert (k["img_size"], k["patch_size"], k["depth"], k["dim"], k["heads"], k["mlp_ratio"]) == (
        512,
        16,
        24,
        768,
        12,
        4.0,
    )


def test_vit_forward_and_qkv_names_for_lora() -> None:
    torch.manual_seed(0)
    vit = ViTClassifier(img_size=32, patch_size=8, dim=32, depth=2, heads=4).eval()
    assert tuple(vit(torch.rand(3, 1, 32, 32)).shape) == (3, 2)
    names = [n for n, _ in vit.named_modules()]
    assert "blocks.0.attn.qkv" in names and "blocks.1.attn.proj" in names


def test_vit_attention_matches_torch_multihead_attention() -> None:
    torch.manual_seed(1)
    from aimd.models.networks.vit import Attention

    attn = Attention(dim=16, heads=4).eval()
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
        x = torch.rand(2, 5, 16)
        ref, _ = mha(x, x, x, need_weights=False)
        torch.testing.assert_close(attn(x), ref, atol=1e-5, rtol=1e-5)


def test_unknown_zoo_name_and_bad_kwargs_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="unknown model 'unet-huge'"):
        get_entry("unet-huge")
    with pytest.raises(InvalidInputError, match="cannot build vit-small"):
        build_network("vit-small", out_channels=2, heads=5)
    assert set(ZOO) == {"unet-b1", "unet-small", "vit-small", "vit-b16-512"}
