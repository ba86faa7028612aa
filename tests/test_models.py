"""Model zoo: every model's default layer, weights handling (offline too), labels, hooks."""

from __future__ import annotations

import socket
import sys
import time

import pytest
import torch
from torch import nn

from eigencam_live.errors import LayerNotFoundError, ModelError, WeightsError, WeightsUnavailableError
from eigencam_live.models import (
    MODELS,
    ActivationCapture,
    feature_layers,
    find_layer,
    load_model,
    to_feature_map,
)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return load_model("resnet18", "none")


def _grid(name: str) -> int:
    """Side of the default layer's map for a 224x224 input: stride 32 (last conv stage), except
    VGG (the ReLU before the last max-pool: 16), ViTs (their patches), and the older networks'
    unpadded strides (AlexNet, SqueezeNet: 13; Inception v3: 5)."""
    if name in ("alexnet", "squeezenet1_0", "squeezenet1_1"):
        return 13
    if name == "inception_v3":
        return 5
    if name == "vit_h_14":
        return 16
    return 224 // (16 if name.startswith("vgg") or name in ("vit_b_16", "vit_l_16") else 32)


# (regnet_y_128gf: 645M parameters built for real, as regnets read values while they are built: 3 GB
# and 5 s for a check of shapes its smaller siblings make the same way)
@pytest.mark.parametrize("name", sorted(set(MODELS) - {"regnet_y_128gf"}))
def test_every_default_layer_is_a_last_stage_feature_map(name):
    """Cheap structural check for all models: built on the meta device (no weights initialised,
    no arithmetic), one forward, and the default layer's output read as (B, C, h, w)."""
    from torchvision.models import get_model

    spec = MODELS[name]
    if name.startswith("regnet"):  # regnet's constructor reads tensor values: build, then move
        net = get_model(name, weights=None).to("meta")
    else:
        with torch.device("meta"):
            net = get_model(name, weights=None)
    net.eval()
    size = spec.fixed_input or (224, 224)
    with ActivationCapture(net, spec.layer) as cap, torch.no_grad():
        logits = net(torch.empty(2, 3, *size, device="meta"))
    fmap = cap.map(size)  # the layout (NCHW, Swin's NHWC, ViT's tokens) read from the shape
    side = _grid(name)
    assert tuple(fmap.shape[0:1] + fmap.shape[2:]) == (2, side, side), tuple(fmap.shape)
    assert fmap.shape[1] >= 256
    assert tuple(logits.shape) == (2, 1000)


# Real weights and arithmetic for a few (test_cam runs regnet too); the meta check above covers the
# rest, and the unit tests below cover the nhwc (Swin) and token (ViT) layouts.
REPRESENTATIVE = [("resnet18", (64, 96)), ("mobilenet_v3_small", (64, 96))]


@pytest.mark.parametrize(("name", "size"), REPRESENTATIVE)
def test_representative_models_build_and_map(name, size):
    torch.manual_seed(0)
    loaded = load_model(name, "none")
    assert not loaded.trained and loaded.weights == "none" and not loaded.net.training
    x = torch.randn(2, 3, *size)
    with ActivationCapture(loaded.net, loaded.spec.layer) as cap, torch.inference_mode():
        logits = loaded.net(x)
    fmap = cap.map(size)
    assert fmap.shape[0] == 2 and fmap.shape[2:] == (size[0] // 32, size[1] // 32)
    assert torch.isfinite(fmap).all() and float(fmap.std()) > 0
    assert tuple(logits.shape) == (2, 1000)


def test_vit_tokens_become_a_map():
    """ViT's default layer gives (B, 1 + 14*14, 768) tokens -> (B, 768, 14, 14), class token dropped."""
    spec = MODELS["vit_b_16"]
    assert spec.fixed_input == (224, 224)
    b, side, d = 2, 14, 8
    grid = torch.arange(b * side * side * d, dtype=torch.float32).view(b, side * side, d)
    tokens = torch.cat([torch.full((b, 1, d), -1.0), grid], dim=1)
    fmap = to_feature_map(tokens, (224, 224))
    assert tuple(fmap.shape) == (b, d, side, side)
    # token 1 + (row * 14 + col) sits at (row, col)
    assert torch.equal(fmap[1, 3, 5, 7], grid[1, 5 * side + 7, 3])
    assert float(fmap.min()) >= 0  # the class token is gone


def test_to_feature_map_reads_the_layout_from_the_shape():
    """NCHW, NHWC and tokens told apart by which reading puts a grid on the input's pixels."""
    x = torch.arange(2 * 96 * 7 * 12, dtype=torch.float32).view(2, 96, 7, 12)  # stride 32 on 224x384
    assert to_feature_map(x, (224, 384)) is x
    nhwc = x.permute(0, 2, 3, 1)  # what a Swin stage outputs
    assert torch.equal(to_feature_map(nhwc, (224, 384)), x)
    assert torch.equal(to_feature_map(x.permute(0, 2, 3, 1)[:, :, :, :7], (224, 384)), x[:, :7])  # C < w
    square = torch.randn(1, 768, 7, 7)
    assert to_feature_map(square, (224, 224)) is square
    assert torch.equal(to_feature_map(square.permute(0, 2, 3, 1), (224, 224)), square)
    assert to_feature_map((x, "aux"), (224, 384)) is x
    # TNT's blocks: (the 196 patches' inner pixels, the image's tokens): the image's own, for one image
    outer = torch.randn(1, 197, 384)
    assert torch.equal(to_feature_map((torch.randn(196, 16, 24), outer), (224, 224), 1, batch=1),
                       outer[:, 1:].transpose(1, 2).reshape(1, 384, 14, 14))
    # odd input sizes: a grid rounded up (ceil) still fits
    assert to_feature_map(torch.randn(1, 8, 8, 12), (225, 384)).shape == (1, 8, 8, 12)
    with pytest.raises(LayerNotFoundError, match=r"shape \(2, 512\).*expected"):
        to_feature_map(torch.randn(2, 512), (224, 224))  # a pooled vector
    with pytest.raises(LayerNotFoundError, match="not a tensor"):
        to_feature_map(("a", 1), (224, 224))


@pytest.mark.parametrize(("prefix", "grid", "size", "hint"), [
    (0, (14, 14), (224, 224), None),      # no class token (a global-pool ViT)
    (1, (14, 14), (224, 224), None),      # ViT/BEiT: a class token
    (2, (14, 14), (224, 224), 2),         # DeiT distilled: class + distillation tokens
    (5, (37, 37), (518, 518), 5),         # DINOv2 with 4 registers
    (1, (12, 20), (192, 320), None),      # a non-square patch grid
    (5, (16, 9), (256, 144), 5),          # registers and a portrait grid
    (2, (12, 20), (192, 320), None),      # two prefix tokens found without a hint
    # registers not counted by the model (a library trial): a class token and 4, 8 or 16 of them
    (5, (12, 20), (192, 320), None),
    (5, (4, 6), (64, 96), None),          # 1 + 28 would be a 4x7 grid of stride 13
    (9, (14, 14), (224, 224), None),
    (17, (16, 16), (224, 224), None),     # patches of 14
])
def test_tokens_reshape_to_the_patch_grid(prefix, grid, size, hint):
    b, d = 2, 6 if prefix <= 2 or hint else 64  # (a transformer's width, a multiple of 8)
    h, w = grid
    patches = torch.randn(b, h * w, d)
    tokens = torch.cat([torch.full((b, prefix, d), 99.0), patches], dim=1)
    fmap = to_feature_map(tokens, size, hint)
    assert tuple(fmap.shape) == (b, d, h, w)
    assert torch.equal(fmap.flatten(2).transpose(1, 2), patches)  # row-major patch order, prefix gone


class _Block(torch.nn.Module):
    """A transformer block, plain (one head): what exports to ONNX as it runs."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.norm, self.qkv, self.proj = torch.nn.LayerNorm(d), torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.LayerNorm(d), torch.nn.Linear(d, 2 * d), torch.nn.GELU(),
                                       torch.nn.Linear(2 * d, d))

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        x = x + self.proj(torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1) @ v)
        return x + self.mlp(x)


class _RegisterViT(torch.nn.Module):
    """A ViT of one's own with a class token and 4 registers, which it does not count for anyone
    (no ``num_prefix_tokens``), as DINOv2's with registers."""

    def __init__(self, registers: int = 4) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 32, 16, stride=16)
        self.prefix = torch.nn.Parameter(torch.randn(1, 1 + registers, 32))
        self.blocks = torch.nn.Sequential(_Block(), _Block())
        self.norm = torch.nn.LayerNorm(32)
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.prefix.expand(len(x), -1, -1), tokens], dim=1)
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def test_a_vit_with_registers_it_does_not_count_gives_the_map_of_its_last_block(tmp_path):
    """A library trial: its default layer was the patch embedding, and its blocks were refused as
    "not a feature map" (by name and in its ONNX file)."""
    import warnings

    import numpy as np

    from eigencam_live.cam import eigen_cam
    from eigencam_live.engine import Engine, EngineConfig

    from .conftest import scene

    torch.manual_seed(0)
    net = _RegisterViT().eval()
    engine = Engine(EngineConfig(device="cpu", backend="torch", short_side=192), model=net)
    assert engine.layer == "norm"
    frame = scene(192, 320)
    x = engine.preprocess(frame[None])
    with ActivationCapture(net, ["norm"]) as cap, torch.no_grad():
        net(x)
    want = cap.outputs["norm"][:, 5:].transpose(1, 2).reshape(1, 32, 12, 20)  # the class token and 4 registers off
    np.testing.assert_allclose(engine.process_one(frame).cam, eigen_cam(want, 1).maps[0].numpy(), atol=1e-4)
    path = tmp_path / "vit_reg.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 192, 320),), str(path), input_names=["image"], output_names=["logits"],
                          opset_version=17, dynamo=False)
    from_file = Engine(EngineConfig(model=str(path), short_side=192))
    assert "norm" in from_file.layer.lower()  # (the graph's LayerNormalization output)
    np.testing.assert_allclose(from_file.process_one(frame).cam, eigen_cam(want, 1).maps[0].numpy(), atol=1e-3)


def test_outputs_that_are_not_maps_of_the_input_are_refused():
    """Per-head q/k tensors, a detector's (B, 84, anchors) outputs, per-proposal features: shapes a
    loose reading would take for maps, which then filled the layer lists."""
    with pytest.raises(LayerNotFoundError, match=r"\(1, 2, 101, 32\)"):
        to_feature_map(torch.randn(1, 2, 101, 32), (224, 224))  # neither NCHW nor NHWC on the grid
    with pytest.raises(LayerNotFoundError, match=r"\(1, 84, 3780\)"):
        to_feature_map(torch.randn(1, 84, 3780), (320, 320))  # 81 + 3 would be a 9x9 grid of stride 35
    # a one-class YOLO's predictions: 64 + 1 a "class token" and an 8x8 grid of stride 80, 8400 channels
    with pytest.raises(LayerNotFoundError, match=r"\(1, 65, 8400\)"):
        to_feature_map(torch.randn(1, 65, 8400), (640, 640))
    with pytest.raises(LayerNotFoundError, match=r"\(1, 1, 4, 8400\)"):  # its box distances: no 1x4 grid "2 cells off"
        to_feature_map(torch.randn(1, 1, 4, 8400), (640, 640))
    with pytest.raises(LayerNotFoundError, match=r"\(1, 252, 11\)"):  # YOLOv5's 11 values for 3 anchors of 7x12
        to_feature_map(torch.randn(1, 252, 11), (224, 384))  # cells: no 12x21 grid of 11-wide tokens (stride 18)
    with pytest.raises(LayerNotFoundError, match=r"\(1, 100, 256\)"):  # DETR's 100 queries: no 16 registers and 7x12
        to_feature_map(torch.randn(1, 100, 256), (224, 384))
    head = torch.randn(1, 10, 32, 32)  # a head's 10 predictions flattened: a map, not 9 + 1 tokens of 3x3
    assert torch.equal(to_feature_map(head.flatten(2), (256, 256)), head)
    with pytest.raises(LayerNotFoundError, match="holds 300 maps for 1 image"):
        to_feature_map(torch.randn(300, 256, 7, 7), (224, 224), batch=1)
    assert to_feature_map(torch.randn(1, 9, 12, 64), (224, 384)).shape == (1, 64, 9, 12)  # NHWC, 2 cells off
    assert to_feature_map(torch.randn(1, 64, 26, 26), (224, 224)).shape == (1, 64, 26, 26)  # unpadded convs
    # squeezenet's 32 channels of a 54x94 map (unpadded convs, a cell off stride 4) were read as a 32x54
    # grid of stride 7 (a review): a grid of an unusual stride does not win over a near one
    assert to_feature_map(torch.randn(1, 32, 54, 94), (224, 384)).shape == (1, 32, 54, 94)


def test_a_map_flattened_channels_first_is_read_as_that_map():
    """``(B, C, h*w)`` (a map flattened before an attention block): it was taken for tokens where
    ``C`` happened to fit a grid (576 = 24x24 at 224x224) and refused at any other size."""
    fmap = torch.randn(2, 576, 7, 7)
    assert torch.equal(to_feature_map(fmap.flatten(2), (224, 224)), fmap)  # both fit: the usual stride wins
    fpn = torch.randn(2, 256, 14, 14)  # 256 would be a 16x16 grid of stride 14 too: 196 values are no token's width
    assert torch.equal(to_feature_map(fpn.flatten(2), (224, 224)), fpn)
    wide = torch.randn(2, 576, 7, 12)
    assert torch.equal(to_feature_map(wide.flatten(2), (224, 384)), wide)  # only the map fits
    # tokens stay tokens: a class token, a model that declares its prefix tokens, or a usual stride
    # where both fit (PVT's first stage: 56x56 tokens of 64 values, 8x8 being stride 28)
    for tokens, hint, grid in [(torch.randn(1, 197, 256), None, (14, 14)), (torch.randn(1, 576, 49), 0, (24, 24)),
                               (torch.randn(1, 3136, 64), None, (56, 56)), (torch.randn(1, 196, 256), None, (14, 14))]:
        assert tuple(to_feature_map(tokens, (224, 224), hint).shape[-2:]) == grid
    # an MLP-Mixer's token MLP: (B, 512 channels, 196 positions) is a map; its hidden width 256 is not
    assert to_feature_map(torch.randn(1, 512, 196), (224, 224)).shape == (1, 512, 14, 14)
    with pytest.raises(LayerNotFoundError):
        to_feature_map(torch.randn(1, 512, 256), (224, 224))
    with pytest.raises(LayerNotFoundError):  # PiT's 1 + 27x27 tokens (no grid) of 64 values: 8x8 is stride 28
        to_feature_map(torch.randn(1, 730, 64), (224, 224))


def test_tokens_that_fit_no_grid_are_refused_with_the_shape():
    with pytest.raises(LayerNotFoundError, match=r"\(1, 3, 8\).*224x384"):
        to_feature_map(torch.randn(1, 3, 8), (224, 384))  # three tokens: no 2x2 grid
    with pytest.raises(LayerNotFoundError, match=r"\(1, 1, 384\)"):
        to_feature_map(torch.randn(1, 1, 384), (224, 224))  # a pooled token


def test_wrong_layer_name_lists_close_matches(resnet18):
    with pytest.raises(LayerNotFoundError) as info:
        find_layer(resnet18.net, "layer5")
    msg = str(info.value)
    assert "'layer5'" in msg and "layer4" in msg and "layer1" in msg
    with pytest.raises(LayerNotFoundError):
        find_layer(resnet18.net, "")
    with pytest.raises(LayerNotFoundError):
        ActivationCapture(resnet18.net, ["layer4", "nope"])
    assert find_layer(resnet18.net, "layer4.1.conv2") is resnet18.net.layer4[1].conv2


def test_unknown_model_name():
    with pytest.raises(ModelError, match="resnet18"):
        load_model("resnet19", "none")


def test_weights_from_a_state_dict_file(tmp_path, resnet18, monkeypatch):
    path = tmp_path / "r18.pth"
    other = load_model("resnet18", "none").net
    with torch.no_grad():  # other weights than the fixture's (random weights are the same each load)
        for p in other.parameters():
            p.add_(0.01 * torch.randn_like(p))
    torch.save(other.state_dict(), path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = load_model("resnet18", str(path))
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert loaded.trained and loaded.weights == str(path) and not loaded.net.training
    for (k, a), b in zip(other.state_dict().items(), loaded.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not torch.equal(loaded.net.conv1.weight, resnet18.net.conv1.weight)
    # a checkpoint that wraps the state_dict ({"state_dict": ...}) loads too
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": other.state_dict(), "epoch": 3}, wrapped)
    assert torch.equal(load_model("resnet18", str(wrapped)).net.fc.weight, other.fc.weight)


class _Payload:
    """A pickled object that is not a tensor: weights_only=True must refuse to run its reduce."""

    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_bad_weights_files_raise_weights_error(tmp_path, capsys):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    pickled = tmp_path / "pickled.pth"
    torch.save({"fc.weight": _Payload()}, pickled)
    mismatch = tmp_path / "mobilenet.pth"
    torch.manual_seed(0)
    torch.save(load_model("mobilenet_v3_small", "none").net.state_dict(), mismatch)
    not_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_dict)
    cases = {
        tmp_path / "missing.pth": "not found",
        garbage: "cannot read",
        pickled: "cannot read",
        mismatch: "does not fit resnet18",
        not_dict: "does not hold a state_dict",
    }
    for path, words in cases.items():
        with pytest.raises(WeightsError, match=words) as info:
            load_model("resnet18", str(path))
        assert not isinstance(info.value, WeightsUnavailableError)
        assert str(path) in str(info.value)
    assert "arbitrary code ran" not in capsys.readouterr().out


def test_weights_for_other_classes_say_the_layer_and_the_way(tmp_path):
    """A fine-tune for 10 classes gave torch's two lines of size mismatches, no way forward (a trial)."""
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "ten.pth")
    with pytest.raises(WeightsError) as info:
        load_model("resnet18", str(tmp_path / "ten.pth"))
    said = str(info.value)
    assert f"weights file {tmp_path / 'ten.pth'} does not fit resnet18: its fc.weight is 10x512, the network's " \
           "1000x512 and 1 more (trained for other classes?" in said
    assert "--model mynet:build, with --weights FILE" in said and "\n" not in said
    other = torchvision.models.resnet18()  # another stem (a 3x3 kernel): no "other classes?" (a review)
    other.conv1 = torch.nn.Conv2d(3, 64, 3, 2, 1, bias=False)
    torch.save(other.state_dict(), tmp_path / "stem.pth")
    with pytest.raises(WeightsError, match="size mismatch for conv1.weight") as info:
        load_model("resnet18", str(tmp_path / "stem.pth"))
    assert "other classes" not in str(info.value)


def test_a_state_dict_under_a_wrappers_name_is_read(tmp_path):
    """A trial: every key saved as ``model.<key>`` (a training wrapper's attribute, as Lightning's
    checkpoints have them) was refused for the missing keys alone. Read where the rest fits exactly;
    where it does not, the unexpected keys are said beside the missing ones."""
    torch.manual_seed(1)
    net = load_model("resnet18", "none").net
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "lightning.ckpt")
    loaded = load_model("resnet18", str(tmp_path / "lightning.ckpt"))
    assert torch.equal(loaded.net.conv1.weight, net.conv1.weight)
    partial = {f"model.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"Missing key\(s\).*; Unexpected key\(s\) in state_dict: \"model\.conv1"):
        load_model("resnet18", str(tmp_path / "partial.pth"))
    # a wrapper holding more than the network (a trial: a loss's class weights beside it was refused)
    torch.save({"state_dict": {**{f"model.{k}": v for k, v in net.state_dict().items()},
                               "criterion.weight": torch.ones(1000)}}, tmp_path / "with_loss.ckpt")
    loaded = load_model("resnet18", str(tmp_path / "with_loss.ckpt"))
    assert torch.equal(loaded.net.fc.weight, net.fc.weight)
    # a wrapper's own buffer (a key without a dot), and DataParallel's prefix inside the wrapper's (a review)
    torch.save({**{f"model.module.{k}": v for k, v in net.state_dict().items()}, "temperature": torch.ones(1)},
               tmp_path / "wrapped.ckpt")
    loaded = load_model("resnet18", str(tmp_path / "wrapped.ckpt"))
    assert torch.equal(loaded.net.fc.weight, net.fc.weight)
    # the network twice (an EMA copy beside it): which one is meant is not said
    torch.save({**{f"model.{k}": v for k, v in net.state_dict().items()},
                **{f"ema.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "ema.ckpt")
    with pytest.raises(WeightsError, match=r"holds the network 2 times, under model\. and ema\.: save the keys of"):
        load_model("resnet18", str(tmp_path / "ema.ckpt"))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No cached weights (an empty torch hub dir) and no DNS: what a machine without network sees."""
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "offline (test)")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return hub


def test_imagenet_offline_fails_fast_and_clearly(offline):
    assert torch.hub.get_dir() == str(offline)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("resnet18", "imagenet")
    assert time.monotonic() - t0 < 10.0
    msg = str(info.value)
    assert "resnet18" in msg and "--weights none" in msg
    with pytest.raises(WeightsUnavailableError, match="not in the cache"):
        load_model("resnet18", "imagenet", allow_download=False)
    assert not any(offline.rglob("*.pth"))  # nothing half-written into the cache


def test_labels_come_from_torchvision_metadata(resnet18):
    labels = resnet18.labels
    assert len(labels) == 1000 and len(set(labels)) >= 998
    assert labels[0] == "tench" and labels[1] == "goldfish" and labels[207] == "golden retriever"
    assert load_model("mobilenet_v3_small", "none").labels == labels


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_hooks_removed_and_training_restored_after_an_exception(resnet18):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.ReLU(), _Boom()))
    net.train()
    net[1].eval()  # a mixed state must come back exactly
    before = {name: m.training for name, m in net.named_modules()}
    with pytest.raises(RuntimeError, match="boom"):
        with ActivationCapture(net, ["0", "2.0"]) as cap:
            assert not net.training  # eval mode inside
            net(torch.randn(1, 3, 8, 8))
    assert {name: m.training for name, m in net.named_modules()} == before
    assert all(not m._forward_hooks for m in net.modules())
    assert set(cap.outputs) == {"0", "2.0"}  # what ran before the failure was captured
    # and a normal exit on a real model leaves no hook either
    with ActivationCapture(resnet18.net, "layer4") as cap, torch.inference_mode():
        resnet18.net(torch.randn(1, 3, 64, 64))
    assert tuple(cap.map((64, 64)).shape) == (1, 512, 2, 2)
    assert all(not m._forward_hooks for m in resnet18.net.modules())


def test_feature_layers_lists_spatial_layers_in_order(resnet18):
    layers = feature_layers(resnet18, (64, 96))
    names = [layer.name for layer in layers]
    assert "layer4" in names and names.index("layer1") < names.index("layer4")
    by_name = {layer.name: layer for layer in layers}
    assert by_name["layer4"].shape == (512, 2, 3) and by_name["layer4"].kind == "Sequential"
    assert by_name["conv1"].kind == "Conv2d" and by_name["conv1"].shape == (64, 32, 48)
    assert "fc" not in names and "avgpool" not in names
    assert all(not m._forward_hooks for m in resnet18.net.modules())


def test_a_factory_can_be_named_by_its_files_path(tmp_path, monkeypatch):
    """--model path/to/mynet.py:build, from any folder (its neighbours importable); the path without
    .py, or a weights file as a model, gets one line saying how to name it."""
    from eigencam_live.config import EngineConfig
    from eigencam_live.errors import ConfigError

    folder = tmp_path / "nets"
    folder.mkdir()
    (folder / "blocks.py").write_text("from torch import nn\n"
                                      "def stem():\n    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())\n")
    (folder / "mynet.py").write_text("import torch\nfrom torch import nn\nfrom blocks import stem\n"
                                     "def build():\n    torch.manual_seed(0)\n"
                                     "    return nn.Sequential(stem(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))
    loaded = load_model("../nets/mynet.py:build")
    assert loaded.spec.layer == "0" and isinstance(loaded.net, torch.nn.Sequential)
    # another folder's blocks.py is its own (the first folder's was cached as 'blocks' for good),
    # and my-net.py is not my_net.py (both were one module name)
    other = tmp_path / "other"
    other.mkdir()
    (other / "blocks.py").write_text("from torch import nn\ndef stem():\n    return nn.Conv2d(3, 4, 3)\n"
                                     "def head():\n    return nn.Linear(4, 7)\n")
    (other / "my-net.py").write_text("from torch import nn\nfrom blocks import stem, head\n"
                                     "def build():\n    return nn.Sequential(stem(), nn.ReLU(), nn.AdaptiveAvgPool2d(1),"
                                     " nn.Flatten(), head())\n")
    (other / "my_net.py").write_text((other / "my-net.py").read_text().replace("head())", "nn.Linear(4, 5))"))
    assert load_model("../other/my-net.py:build").net[-1].out_features == 7
    assert load_model("../other/my_net.py:build").net[-1].out_features == 5
    assert str(other) not in sys.path and str(folder) not in sys.path and "blocks" not in sys.modules
    # what a factory imports from elsewhere stays imported, even from a virtual environment inside
    # its folder (dropping timm there broke every later timm model: torch's libraries registered twice)
    site = other / ".venv" / "lib" / "site-packages"
    (site / "fakepkg").mkdir(parents=True)
    (site / "fakepkg" / "__init__.py").write_text("from torch import nn\ndef stem():\n    return nn.Conv2d(3, 4, 3)\n")
    (other / "uses_pkg.py").write_text("import torch\nfrom torch import nn\nimport fakepkg\n"
                                       "def build():\n    return nn.Sequential(fakepkg.stem(), nn.ReLU())\n")
    sys.path.insert(0, str(site))
    load_model("../other/uses_pkg.py:build")
    assert "fakepkg" in sys.modules
    sys.modules.pop("fakepkg")
    with pytest.raises(ModelError, match=r"no such Python file: \.\./nets/other\.py"):
        load_model("../nets/other.py:build")
    with pytest.raises(ConfigError, match=r"named with its \.py: \.\./nets/mynet\.py:build"):
        EngineConfig(model="../nets/mynet:build")
    for weights in ("resnet18-full.pth", r"C:\models\net.pth", "runs/exp:3/best.ckpt"):
        with pytest.raises(ConfigError, match="is a weights file: a state_dict goes to --weights"):
            EngineConfig(model=weights)
    with pytest.raises(ConfigError, match=r"name the factory in it too: \.\./nets/mynet\.py:build"):
        EngineConfig(model="../nets/mynet.py")
    # a folder is said to be one (a trial: "unknown model", with the zoo's names; "no such Python file")
    (tmp_path / "nets" / "folder.py").mkdir()
    with pytest.raises(ConfigError, match=r"'\.\./nets' is a folder, not a model: an \.onnx file"):
        EngineConfig(model="../nets")
    with pytest.raises(ModelError, match=r"\.\./nets/folder\.py is a folder, not a Python file"):
        load_model("../nets/folder.py:build")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_layer_the_network_then_changes_in_place_gives_its_own_output(backend):
    """resnet18's layer4.1.bn2 is followed by ``out += identity`` and ``ReLU(inplace=True)``: its
    captured output was layer4's (the same spectrum), on both backends (the export traced it too)."""
    import numpy as np

    from eigencam_live.cam import eigen_cam
    from eigencam_live.engine import Engine, EngineConfig

    torch.manual_seed(0)
    engine = Engine(EngineConfig(model="resnet18", weights="none", layer="layer4.1.bn2", backend=backend, short_side=96))
    image = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    got = engine.process(image)[0]
    x = engine.prepare(image).x
    truth = {}
    net = engine.loaded.net
    hook = net.layer4[1].bn2.register_forward_hook(lambda m, i, o: truth.update(bn2=o.clone()))  # (returns None)
    with torch.inference_mode():
        net(x)
    hook.remove()
    assert truth["bn2"].min() < 0  # a BatchNorm's own output (layer4's is >= 0 after its ReLU)
    want = eigen_cam(truth["bn2"]).explained[0, :3].numpy()
    assert np.allclose(got.explained[:3], want, atol=1e-4)


def test_random_weights_are_the_same_each_run_and_leave_the_callers_random_state():
    """--weights none gave new weights (and a new ONNX export in the cache, 47 MB for resnet18) on
    every run; the caller's random numbers are not disturbed."""
    from eigencam_live.models import load_model

    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b = (load_model("mobilenet_v3_small", "none").net.state_dict() for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_building_googlenet_says_nothing_of_torchvisions_init_scheme(recwarn):
    """'FutureWarning: The default weight initialization of GoogleNet...' reached a user's terminal."""
    from eigencam_live.models import load_model

    load_model("googlenet", "none")
    assert not [w for w in recwarn if "weight initialization" in str(w.message)]
