"""Backends: ONNX Runtime gives torch's maps and predictions, its exports are cached and checked,
and anything it cannot run falls back to torch with a warning."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from eigencam_live.backends import OnnxBackend, TorchBackend, cache_dir, export_cache, onnx_backend, onnx_gram
from eigencam_live.cam import eigen_cam
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, ModelError, NetworkError
from eigencam_live.models import ActivationCapture, load_model

from .conftest import scene


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _loaded(name: str, seed: int = 0):
    """Random weights (the same each load), made other ones for another ``seed``."""
    loaded = load_model(name, "none")
    if seed:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in loaded.net.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    return loaded


def _engines(name: str, **cfg):
    loaded = _loaded(name)
    base = {"model": name, "weights": "none", "short_side": 96, **cfg}
    return (Engine(EngineConfig(device="cpu", backend="torch", optimize=False, **base), model=loaded),
            Engine(EngineConfig(device="cpu", backend="onnxruntime", **base), model=loaded))


def test_auto_is_onnxruntime_on_the_cpu_and_torch_elsewhere():
    loaded = _loaded("resnet18")
    cpu = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=64), model=loaded)
    assert isinstance(cpu.backend, OnnxBackend)
    bf16 = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=64, precision="bf16"), model=loaded)
    assert isinstance(bf16.backend, TorchBackend)
    with pytest.raises(ConfigError, match="fp32") as info:
        Engine(EngineConfig(device="cpu", model="resnet18", weights="none", backend="onnxruntime", precision="bf16"), model=loaded)
    assert info.value.field == "backend"
    with pytest.raises(ConfigError, match="backend"):
        EngineConfig(backend="tensorrt")


@pytest.mark.parametrize(("name", "layer"), [("resnet18", None), ("mobilenet_v3_small", None), ("resnet18", "layer3"),
                                             ("efficientnet_b0", None), ("swin_t", None)])
def test_onnxruntime_gives_torchs_maps_and_predictions(name, layer):
    ref, ort = _engines(name, layer=layer)
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    want, got = ref.process(frames), ort.process(frames)
    assert ort.backend.running == "onnxruntime" and ort.backend.warning is None
    for w, g in zip(want, got, strict=True):
        assert _corr(w.cam, g.cam) > 0.999
        np.testing.assert_allclose(g.explained, w.explained, atol=1e-3)
        assert [lbl for lbl, _ in g.predictions] == [lbl for lbl, _ in w.predictions]
        assert g.peak == w.peak


def test_one_export_serves_every_input_size_and_batch():
    ref, ort = _engines("resnet18")
    for h, w, b in ((120, 200, 1), (200, 120, 3), (96, 96, 2)):
        frames = np.stack([scene(h, w, seed=i) for i in range(b)])
        for r, g in zip(ref.process(frames), ort.process(frames), strict=True):
            assert g.cam.shape == r.cam.shape and _corr(r.cam, g.cam) > 0.999
    assert len(list(cache_dir().glob("resnet18-*.onnx"))) >= 1 and ort.backend.running == "onnxruntime"


def test_the_cache_is_reused_and_a_corrupt_file_is_rebuilt(monkeypatch):
    loaded = _loaded("mobilenet_v3_small", seed=3)
    frame = scene(96, 128)
    first = Engine(EngineConfig(device="cpu", model="mobilenet_v3_small", weights="none", short_side=64), model=loaded)
    want = first.process_one(frame)
    paths = [first.backend._path(first.layer)]
    assert paths[0].exists()
    # A second engine on the same weights loads the file: no export.
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: pytest.fail("exported again"))
    again = Engine(EngineConfig(device="cpu", model="mobilenet_v3_small", weights="none", short_side=64), model=loaded)
    np.testing.assert_allclose(again.process_one(frame).cam, want.cam, atol=1e-5)
    monkeypatch.undo()
    for path in paths:
        path.write_bytes(path.read_bytes()[: 1000])  # cut off
    rebuilt = Engine(EngineConfig(device="cpu", model="mobilenet_v3_small", weights="none", short_side=64), model=loaded)
    np.testing.assert_allclose(rebuilt.process_one(frame).cam, want.cam, atol=1e-5)
    assert rebuilt.backend.running == "onnxruntime" and all(path.stat().st_size > 100_000 for path in paths)
    # Other weights are another key: a file made for these is never trusted for those.
    other = _loaded("mobilenet_v3_small", seed=4)
    assert OnnxBackend(other, "features")._path("features") != paths[0]


def test_the_cache_keeps_the_recently_used_exports_within_its_limit(tmp_path, monkeypatch):
    import time

    now = time.time()
    for age, name in enumerate(["new", "mid", "old", "oldest"]):  # 1 MB each, "new" used last
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(b"x" * 1_000_000)
        os.utime(path, (now - 100 * age, now - 100 * age))
    for name, age in (("dead", 7200), ("live", 10)):  # unfinished exports: a dead process's, one under way
        part = tmp_path / f".{name}.onnx.123.part"
        part.write_bytes(b"x")
        os.utime(part, (now - age, now - age))
    # a minute old: one left by a process of this machine that has ended (an app closed mid-export)
    import subprocess
    import sys

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ours = export_cache._HOST
    for part in (tmp_path / f".quit.onnx.{ours}~{int(ended.stdout)}.part", export_cache.part_path(tmp_path / "writing.onnx")):
        part.write_bytes(b"x")
        os.utime(part, (now - 60, now - 60))
    removed = export_cache.trim_cache(tmp_path, limit=2_500_000, keep=tmp_path / "oldest.onnx")
    assert sorted(p.name for p in removed) == [".dead.onnx.123.part", f".quit.onnx.{ours}~{int(ended.stdout)}.part",
                                               "mid.onnx", "old.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".live.onnx.123.part", f".writing.onnx.{ours}~{os.getpid()}.part",
                                                          "new.onnx", "oldest.onnx"]
    # In use: the engine marks the export it loads, and trims the rest beyond the limit.
    monkeypatch.setattr(export_cache, "CACHE_LIMIT_BYTES", 1)
    monkeypatch.setenv("EIGENCAM_CACHE", str(tmp_path / "own"))  # the other tests' exports stay
    cache_dir().mkdir(parents=True)
    stale = cache_dir() / "stale-0.onnx"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (now - 1e6, now - 1e6))
    engine = Engine(EngineConfig(device="cpu", model="mobilenet_v3_small", weights="none", short_side=64),
                    model=_loaded("mobilenet_v3_small", seed=5))
    engine.process_one(scene(96, 128))
    used = engine.backend._path(engine.layer)
    assert used.exists() and not stale.exists() and time.time() - used.stat().st_mtime < 60
    assert list(cache_dir().glob("*.onnx")) == [used]


def test_the_runtime_gives_the_centred_gram_matrix_where_the_exact_solver_uses_it():
    """Where the map has no more positions than channels (and no more than ``EXACT_MAX_DIM``), ONNX
    Runtime returns ``X_c X_c^T`` of the positions, ``X_c 1`` and ``||X||^2`` beside the
    activations, and the engine's map is the one the solver finds without them; elsewhere (a shallow
    layer's large map) there are none."""
    _, ort = _engines("resnet18")
    x = ort.preprocess(scene(96, 128)[None].repeat(2, axis=0))
    assert ort.backend.preparing  # both graphs are built on the first frame: the app says so
    logits, fmap, gram = ort.backend.forward_gram(x)
    assert not ort.backend.preparing
    assert fmap.shape == (2, 512, 3, 4) and [tuple(t.shape) for t in gram] == [(2, 12, 12), (2, 12), (2,)]
    raw = fmap.double().flatten(2)
    a = raw - raw.mean(dim=2, keepdim=True)
    torch.testing.assert_close(torch.from_numpy(gram.matrix).double(), a.mT @ a, rtol=1e-4, atol=1e-6 * float((a.mT @ a).abs().max()))
    torch.testing.assert_close(torch.from_numpy(gram.sums).double(), a.sum(dim=1), rtol=1e-4, atol=1e-5 * float(a.abs().sum(dim=1).max()))
    torch.testing.assert_close(torch.from_numpy(gram.raw).double(), raw.square().sum(dim=(1, 2)), rtol=1e-5, atol=0)
    assert ort.backend._run(x, gram=False)[2] is None  # asked for only where the exact solver takes it
    with_gram = eigen_cam(fmap, gram=gram)
    torch.testing.assert_close(with_gram.maps, eigen_cam(fmap).maps, rtol=0, atol=1e-5)
    ort.reconfigure(layer="layer1")  # 64 channels, 24 x 32 positions
    assert ort.backend.preparing
    assert ort.backend.forward_gram(x)[2] is None
    assert not ort.backend.preparing and ort.backend.running == "onnxruntime"


def test_a_disagreeing_runtime_falls_back_to_torch_with_a_warning(monkeypatch):
    ref, ort = _engines("resnet18")
    monkeypatch.setattr(onnx_backend, "agree", lambda *a, **k: False)
    frame = scene(96, 128)
    got = ort.process_one(frame)
    assert ort.backend.running == "torch" and "differ from torch" in ort.backend.warning
    np.testing.assert_allclose(got.cam, ref.process_one(frame).cam, atol=1e-5)


def test_an_export_failure_falls_back_to_torch_with_a_warning_once(monkeypatch, capfd):
    """Say why in one line (torch's exporter prints the whole graph on the process's stdout from C++
    first: muted), and remember it: the same network and layer are not exported again."""
    tries = []

    def refuse(*_a, **_k):
        tries.append(1)
        os.write(1, b"Torch IR graph at exception: graph(%x : Float(...)) ...\n" * 50)
        raise RuntimeError("Exporting the operator 'aten::magic' to ONNX opset version 17 is not supported")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    for _ in range(2):
        _, ort = _engines("mobilenet_v3_small", short_side=128)  # a size no other test exported
        ort.backend._digest = "never-exported"
        assert ort.process_one(scene(96, 128)).cam.shape == (4, 5)
        assert ort.backend.running == "torch" and "aten::magic" in ort.backend.warning
    assert len(tries) == 1
    assert "Torch IR graph" not in capfd.readouterr().out
    monkeypatch.undo()
    os.write(1, b"stdout is back\n")
    assert "stdout is back" in capfd.readouterr().out

    # a failure that is not the exporter's (a full disk while the file is written) is not remembered
    broken = []

    def full_disk(*_a, **_k):
        broken.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_backend, "add_gram", full_disk)
    for _ in range(2):
        _, ort = _engines("mobilenet_v3_small", short_side=128)
        ort.backend._digest = "never-written"
        ort.process_one(scene(96, 128))
        assert ort.backend.running == "torch" and "No space left" in ort.backend.warning
    assert len(broken) == 2


def test_switching_backends_keeps_the_maps_and_the_weights():
    loaded = _loaded("resnet18")
    engine = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=96), model=loaded)
    frame = scene(120, 200)
    a = engine.process_one(frame).cam
    engine.reconfigure(backend="torch")
    assert isinstance(engine.backend, TorchBackend)
    b = engine.process_one(frame).cam
    engine.reconfigure(precision="bf16")
    engine.reconfigure(precision="fp32", backend="onnxruntime")  # fp32 back exactly, then exported
    c = engine.process_one(frame).cam
    assert isinstance(engine.backend, OnnxBackend) and engine.backend.running == "onnxruntime"
    assert _corr(a, b) > 0.999 and _corr(a, c) > 0.999


# -- ONNX files ----------------------------------------------------------------------------------
def _export(net: torch.nn.Module, path, *, size=(224, 224), dynamic=True, channels=3) -> str:
    import warnings

    axes = {"image": {0: "b", 2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, channels, *size),), str(path), input_names=["image"],
                          output_names=["scores"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return str(path)


def test_an_onnx_file_gives_the_torch_networks_maps_on_its_last_feature_map(tmp_path):
    loaded = _loaded("resnet18", seed=5)
    path = _export(loaded.net, tmp_path / "r18.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(1000)))
    ref = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=96, backend="torch"), model=loaded)
    onnx = Engine(EngineConfig(model=path, short_side=96, labels=str(labels)))
    assert onnx.backend.running == "onnxruntime"
    assert onnx.layer.endswith("Relu_output_0") and "layer4" in onnx.layer  # the last feature map
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    for w, g in zip(ref.process(frames), onnx.process(frames), strict=True):
        assert _corr(w.cam, g.cam) > 0.999 and g.peak == w.peak
        assert [p for _, p in g.predictions] == pytest.approx([p for _, p in w.predictions], rel=1e-3)
        assert g.predictions[0][0] == f"class {ref.loaded.labels.index(w.predictions[0][0])}"
    layers = {layer.name: layer.shape for layer in onnx.feature_layers()}
    assert layers[onnx.layer] == (512, 3, 5) and len(layers) > 20  # every conv, relu and add of resnet18
    layer3 = [n for n in layers if "layer3" in n and n.endswith("relu_1/Relu_output_0")][-1]  # its last block
    onnx.reconfigure(layer=layer3)
    ref.reconfigure(layer="layer3")
    assert _corr(ref.process_one(frames[0]).cam, onnx.process_one(frames[0]).cam) > 0.999


def test_what_a_global_pool_feeds_is_no_map_however_large_the_input(tmp_path):
    """A squeeze-excitation's 1x1 convolutions and gate after a global pool are C x 1 x 1 at any
    size: "not a spatial feature map", never "too small ... a larger input" (a review)."""
    from eigencam_live.errors import LayerNotFoundError

    class SqueezeExcite(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.pool = torch.nn.Conv2d(3, 8, 3, 8, 1), torch.nn.AdaptiveAvgPool2d(1)
            self.fc1, self.fc2, self.head = torch.nn.Conv2d(8, 4, 1), torch.nn.Conv2d(4, 8, 1), torch.nn.Linear(8, 5)

        def forward(self, x):
            y = self.conv(x)
            y = y * torch.sigmoid(self.fc2(torch.relu(self.fc1(self.pool(y)))))
            return self.head(y.mean((2, 3)))

    engine = Engine(EngineConfig(model=_export(SqueezeExcite(), tmp_path / "se.onnx", size=(64, 64)), short_side=64))
    for gate in ("/fc1/Conv_output_0", "/Sigmoid_output_0"):
        with pytest.raises(LayerNotFoundError, match=r"is not a spatial feature map \(its output is \(1, \d, 1, 1\)"):
            engine.reconfigure(layer=gate)
    # the scores themselves (a trial: said without any shape)
    with pytest.raises(LayerNotFoundError, match=r"'scores' is the network's class scores, not a spatial feature map"):
        engine.reconfigure(layer="scores")
    engine.reconfigure(layer="/Mul_output_0")  # the gated map is one
    assert engine.process_one(scene(64, 96)).cam.shape == (8, 12)


def test_onnx_file_mistakes_get_one_clear_line(tmp_path):
    from eigencam_live.errors import LayerNotFoundError, ModelError

    with pytest.raises(ModelError, match="not found"):
        Engine(EngineConfig(model=str(tmp_path / "missing.onnx")))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match="cannot read ONNX file"):
        Engine(EngineConfig(model=str(bad)))
    path = _export(_loaded("resnet18").net, tmp_path / "fixed.onnx", size=(96, 128), dynamic=False)
    engine = Engine(EngineConfig(model=path))
    assert engine.loaded.spec.fixed_input == (96, 128)
    assert engine.process_one(scene(240, 240)).cam.shape == (3, 4)  # a fixed-size graph gets its size
    # exported for batch 1 (torch.onnx.export's default): a batch of 3 runs a frame at a time
    assert engine.backend.graph.fixed_batch == 1
    frames = np.stack([scene(240, 240, corner=c, seed=i) for i, c in enumerate(["tl", "br", "tr"])])
    for one, many in zip([engine.process_one(f) for f in frames], engine.process(frames), strict=True):
        np.testing.assert_allclose(many.cam, one.cam, atol=1e-5)
        assert many.predictions == one.predictions
    with pytest.raises(LayerNotFoundError, match=r"no node output named 'layer4' in fixed.onnx. \d+ outputs are named inside 'layer4', the last /layer4/"):
        engine.reconfigure(layer="layer4")  # (the closest names on every path, Engine() too: a library trial)
    with pytest.raises(LayerNotFoundError, match=r"no node output named 'layer4' in fixed.onnx. \d+ outputs are named inside 'layer4', the last /layer4/"):
        Engine(EngineConfig(model=path, layer="layer4"))
    with pytest.raises(LayerNotFoundError, match=r"not a spatial feature map \(its output is \(1, 512, 1, 1\)"):
        engine.reconfigure(layer=next(n for n in engine.backend.graph.order if "GlobalAveragePool" in n))
    for precision in ("bf16", "fp16"):  # (fp16 said "on the CPU use fp32 or bf16", and bf16 then this: a trial)
        with pytest.raises(ConfigError, match="precision: .*exported in") as info:  # the option at fault named
            Engine(EngineConfig(model=path, precision=precision))
        assert info.value.field == "precision"
    with pytest.raises(ConfigError, match="own weights"):
        EngineConfig(model=path, weights="w.pth")
    with pytest.raises(ConfigError, match="onnxruntime, not torch"):
        Engine(EngineConfig(model=path, backend="torch"))
    with pytest.raises(ConfigError, match="labels"):
        Engine(EngineConfig(model=path, labels=str(tmp_path / "nope.txt")))
    three = tmp_path / "three.txt"
    three.write_text("cat\ndog\nbird\n\n")  # a blank line at the end names nothing
    with pytest.raises(ConfigError, match=r"three\.txt names 3 classes, but fixed\.onnx gives 1000 scores"):
        Engine(EngineConfig(model=path, labels=str(three)))
    with pytest.raises(ConfigError, match="names 3 classes, but resnet18 gives 1000 scores"):  # a torch network too
        Engine(EngineConfig(model="resnet18", weights="none", labels=str(three), device="cpu"))
    with pytest.raises(ConfigError, match="std"):
        EngineConfig(std=(0.2, 0.0, 0.2))


class _BatchOfOne(torch.nn.Module):
    """A classifier whose head reshapes to batch 1 (a hand-written ``view(1, -1)``): exported with
    a dynamic batch, it runs only one frame at a time."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)).view(1, -1))


def test_what_the_network_itself_refuses_is_one_line_not_a_traceback(tmp_path, capsys):
    """ONNX files and factories that cannot take what eigencam-live feeds them: refused up front where
    the graph says so (uint8, channels last, an empty file, a folder), else named where they fail,
    with a hint (a batch: --batch-size 1), and the command line says it in one line, exit 1."""
    import onnx

    from eigencam_live.cli import annotate_main
    from eigencam_live.errors import ModelError, NetworkError

    from .media import write_clip

    path = _export(_BatchOfOne(), tmp_path / "one.onnx", size=(64, 64))
    engine = Engine(EngineConfig(model=path, short_side=64))
    frames = np.stack([scene(64, 96, seed=i) for i in range(2)])
    with pytest.raises(NetworkError, match=r"one\.onnx failed on 2 frames of 96x64: node /head/Gemm \(Gemm\): .*"
                                           r"\(--batch-size 1 runs one frame at a time\)$"):
        engine.process(frames)
    assert len(engine.process(frames[:1])) == 1  # one at a time it runs
    clip = write_clip(tmp_path / "in.mp4", frames=4, size=(96, 64))
    code = annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), "--model", path, "--short-side", "64", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "--batch-size 1" in err
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), "--model", path, "--short-side", "64", "-q",
                          "--batch-size", "1"]) == 0

    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    onnx.save(model, tmp_path / "i64.onnx")
    with pytest.raises(ModelError, match=r"i64\.onnx: its input image is int64; eigencam-live feeds float32, float16 or uint8"):
        Engine(EngineConfig(model=str(tmp_path / "i64.onnx")))
    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 4  # (b, h, w, 4): RGBA, channels last
    onnx.save(model, tmp_path / "rgba.onnx")
    with pytest.raises(ModelError, match=r"rgba\.onnx: its input image .* takes 4 channels \(RGBA\?\)"):
        Engine(EngineConfig(model=str(tmp_path / "rgba.onnx")))
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match=r"is empty \(0 bytes\)"):
        Engine(EngineConfig(model=str(tmp_path / "empty.onnx")))
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ModelError, match="is a folder, not an ONNX file"):
        Engine(EngineConfig(model=str(tmp_path / "dir.onnx")))
    model = onnx.load(path)
    model.opset_import[0].version = 99
    onnx.save(model, tmp_path / "future.onnx")
    with pytest.raises(NetworkError, match=r"^ONNX Runtime cannot run future\.onnx: (?!.*onnxruntime_src)"):
        Engine(EngineConfig(model=str(tmp_path / "future.onnx")))

    # a factory whose own check refuses the input, and one that returns TorchScript
    net = _BatchOfOne()
    square = Engine(EngineConfig(device="cpu", backend="torch", short_side=64), model=net)
    with pytest.raises(NetworkError, match=r"_BatchOfOne failed on 2 frames of 96x64: RuntimeError: .*--batch-size 1"):
        square.process(frames)
    with pytest.raises(ModelError, match="TorchScript module"):
        Engine(EngineConfig(device="cpu"), model=torch.jit.trace(net, torch.zeros(1, 3, 64, 64)))


def test_an_onnx_backbone_and_a_convolutional_head_are_read_as_they_are(tmp_path):
    """A graph whose only output is a feature map (a backbone) gives that map and no predictions;
    one whose scores come out as (B, K, 1, 1) (a 1x1-conv head) gives its predictions (they were
    dropped)."""
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU())
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(8, 5, 1))
    frame = scene(64, 96, seed=1)
    backbone = Engine(EngineConfig(model=_export(features, tmp_path / "backbone.onnx", size=(64, 64)), short_side=64))
    ref = Engine(EngineConfig(device="cpu", backend="torch", short_side=64, layer="0"),
                 model=torch.nn.Sequential(features, head, torch.nn.Flatten()))
    want = ref.process_one(frame)
    got = backbone.process_one(frame)
    assert backbone.layer == "scores" and got.predictions == [] and _corr(got.cam, want.cam) > 0.999
    attention = _export(torch.nn.Sequential(features, torch.nn.Softmax(dim=-1)), tmp_path / "attn.onnx", size=(64, 64))
    kinds = {layer.kind for layer in Engine(EngineConfig(model=attention, short_side=64)).feature_layers()}
    assert "Conv" in kinds and "Softmax" not in kinds  # a softmax's output is weights, never a map to show
    conv_head = _export(torch.nn.Sequential(features, head), tmp_path / "convhead.onnx", size=(64, 64))
    engine = Engine(EngineConfig(model=conv_head, short_side=64, top_k=5))
    got = engine.process_one(frame)
    assert engine.loaded.classes == 5
    assert [p for _, p in got.predictions] == pytest.approx([p for _, p in want.predictions], abs=1e-5)
    assert _corr(got.cam, want.cam) > 0.999


def test_the_command_line_lists_layers_and_annotates_with_an_onnx_file(tmp_path, capsys):
    from eigencam_live.cli import annotate_main

    from .media import probe, write_clip

    path = _export(_loaded("mobilenet_v3_small", seed=7).net, tmp_path / "small.onnx")
    assert annotate_main(["--list-layers", "--model", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    default = [line for line in lines if line.endswith("<- default")]
    assert len(default) == 1 and "576x7x7" in default[0]  # a square 224 input before any frame
    # at short side 32 the default is 1x1: the rest is listed, and the refusal is the torch models' own
    assert annotate_main(["--list-layers", "--model", path, "--short-side", "32"]) == 1
    captured = capsys.readouterr()
    assert "for a 32x32 input" in captured.out and "<- default" not in captured.out and "x2x2" in captured.out
    assert "gives 576x1x1 maps: too small to show where the network looks" in captured.err
    assert annotate_main([]) == 2 and "give at least one INPUT" in capsys.readouterr().err
    clip = write_clip(tmp_path / "in.mp4", frames=6, size=(96, 64))
    out = tmp_path / "out.mp4"
    assert annotate_main([str(clip), "-o", str(out), "--model", path, "--short-side", "64", "-q"]) == 0
    assert probe(out)["frames"] == 6
    # a layer by the short name the app shows (a trial: copied from the layer box, it was refused)
    from eigencam_live.backends.onnx_file import short_name

    full = next(line.split()[0] for line in lines if "HardSwish_output_0" in line and "/features.9/" in line)
    shown = short_name(full)
    assert shown != full and "/" in shown and not shown.endswith("_output_0")
    stats = tmp_path / "s.csv"
    assert annotate_main([str(clip), "-o", str(tmp_path / "o1.mp4"), "--model", path, "--layer", shown,
                          "--short-side", "64", "-q", "--stats", str(stats)]) == 0
    assert probe(tmp_path / "o1.mp4")["frames"] == 6
    engine = Engine(EngineConfig(model=path, layer=shown))
    assert engine.layer == full
    tracker = engine.tracker
    tracker.reset = lambda: pytest.fail("the layer did not change: the video state stays")
    engine.reconfigure(smoothing=0.5)  # (a review: the short name read as another layer, each time)
    # --weights imagenet is the default, but typed with a file that holds its own weights it is a mistake
    assert annotate_main([str(clip), "-o", str(tmp_path / "o2.mp4"), "--model", path, "--weights=imagenet"]) == 1
    assert "--weights: an ONNX file holds its own weights" in capsys.readouterr().err
    assert not (tmp_path / "o2.mp4").exists()


def test_a_transformer_runs_on_onnxruntime_without_a_gram_matrix():
    """Tokens are no NCHW map: the exported graph gives no Gram (its nodes would assume rank 4,
    and ONNX Runtime checks both branches of an If), and the maps are torch's."""
    pytest.importorskip("timm")
    ref, ort = _engines("timm:vit_tiny_patch16_224", short_side=224)
    frame = scene(224, 224)
    want, got = ref.process_one(frame), ort.process_one(frame)
    assert ort.backend.running == "onnxruntime" and ort.backend.warning is None
    assert ort.backend.forward_gram(ort.preprocess(frame[None]))[2] is None
    assert _corr(want.cam, got.cam) > 0.999


def test_a_network_of_torchs_own_transformer_layers_runs_on_onnxruntime():
    """nn.TransformerEncoderLayer without gradients takes a fused kernel with no ONNX form: its
    export was refused and torch ran it (torchvision's ViTs: 'aten::_native_multi_head_attention')."""
    class Tokens(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 32, 16, 16)
            self.blocks = torch.nn.TransformerEncoder(
                torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False)
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            tokens = self.blocks(self.embed(x).flatten(2).transpose(1, 2))
            return self.head(tokens.mean(1))

    torch.manual_seed(0)
    net = Tokens()
    base = {"weights": "none", "short_side": 96, "layer": "blocks.layers.1", "device": "cpu"}
    ref = Engine(EngineConfig(backend="torch", optimize=False, **base), model=net)
    ort = Engine(EngineConfig(backend="onnxruntime", **base), model=net)
    frame = scene(96, 128)
    want, got = ref.process_one(frame), ort.process_one(frame)
    assert ort.backend.running == "onnxruntime" and ort.backend.warning is None
    assert _corr(want.cam, got.cam) > 0.999
    assert [p[0] for p in want.predictions] == [p[0] for p in got.predictions]
    assert np.allclose([p[1] for p in want.predictions], [p[1] for p in got.predictions], atol=1e-4)


def test_the_runtime_sums_are_checked_against_what_they_add_up():
    """A softmax over the channels: their sum is 1 at every position, so the centred sums are
    rounding residue (1e-8 in float32, 1e-17 in float64). Held to their own size they never agreed,
    and the runtime's outputs were refused; held to the size of what they add up, they agree, and a
    real error still shows."""
    g = torch.Generator().manual_seed(3)
    fmap = torch.softmax(torch.randn(2, 64, 4, 5, generator=g), dim=1)
    a = fmap.flatten(2).numpy()  # float32 throughout, as ONNX Runtime computes them
    c = a - a.mean(axis=2, keepdims=True)
    found = [c.transpose(0, 2, 1) @ c, c.sum(axis=1), np.square(a).sum(axis=(1, 2))]
    assert onnx_gram.gram_agrees(found, fmap)
    assert not onnx_gram.gram_agrees([found[0], found[1] + 0.01 * np.abs(c).sum(axis=1).max(), found[2]], fmap)
    assert not onnx_gram.gram_agrees([found[0] * 1.01, *found[1:]], fmap)


def test_the_runtime_gram_is_checked_the_first_time_it_comes(monkeypatch):
    """The first input may be too large for a Gram (no check then): the first Gram that comes
    later is compared with one made from its activations, and one that disagrees is never used."""
    _, ort = _engines("resnet18", layer="layer3")  # 256 channels; 6 x 8 positions for a 96 x 128 input
    g = torch.Generator().manual_seed(0)
    big = torch.randn(1, 3, 384, 512, generator=g)  # 24 x 32 positions at layer3: more than its 256 channels
    assert ort.backend.forward_gram(big)[2] is None
    session = ort.backend._sessions["layer3"]
    real_run = session.run
    monkeypatch.setattr(session, "run", lambda names, feeds: [
        *(out := real_run(names, feeds))[:4], out[4] * 2.0])  # a runtime whose energy is wrong
    small = torch.randn(1, 3, 96, 128, generator=g)
    assert ort.backend.forward_gram(small)[2] is None  # refused, and the solver makes its own
    assert ort.backend.forward_gram(small)[2] is None


def test_runtime_sessions_take_the_threads_given_and_never_spin():
    from eigencam_live.backends.onnx_file import runtime_options
    from eigencam_live.options import network_threads

    assert runtime_options(None).intra_op_num_threads == torch.get_num_threads()
    options = runtime_options(3)
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert network_threads() == max(1, len(os.sched_getaffinity(0)) - 1)


@pytest.mark.parametrize("threads", [0, 1, 3])
def test_a_headless_run_shares_the_cores_between_the_network_and_the_encoder(threads):
    from eigencam_live.options import headless_threads

    cores, before = len(os.sched_getaffinity(0)), torch.get_num_threads()
    engine = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", backend="onnxruntime"))
    try:
        encoder = headless_threads(engine, threads)
        network = engine.threads
        # ONNX Runtime's session is made on the first frame, with torch's forward: both have the count
        assert engine.backend.threads == network and torch.get_num_threads() == network
        if threads:
            assert (network, encoder) == (threads, max(1, cores - threads))
        else:
            assert encoder == max(1, cores // 2) and network == max(1, cores - encoder)
    finally:
        torch.set_num_threads(before)


def test_the_networks_threads_go_to_whatever_runs_it(monkeypatch):
    """Engine.threads: ONNX Runtime's pool gets them and torch keeps one thread for the frame path;
    where torch runs the network (its backend, or ONNX Runtime's fallback) torch gets them; unset,
    the caller's count stays after each call."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ref, ort = _engines("mobilenet_v3_small")
        ort.process_one(scene(96, 128))
        assert ort.threads is None and torch.get_num_threads() == 2  # left as the caller set it
        with pytest.raises(ValueError, match="threads"):
            ort.threads = 0
        ort.reconfigure(layer="features.9")  # a session still to be built: it takes the count
        ort.threads = 3
        assert torch.get_num_threads() == 3 and ort.backend.threads == 3  # the layer's session is still to be made
        frame = scene(120, 160)
        got = ort.process_one(frame)
        assert torch.get_num_threads() == 1  # made: ONNX Runtime runs the network
        session = ort.backend._sessions[ort.layer]
        assert session.get_session_options().intra_op_num_threads == 3
        ort.reconfigure(backend="torch")
        assert torch.get_num_threads() == 3
        ort.reconfigure(backend="onnxruntime")  # a new backend: its session is made on the next frame
        assert torch.get_num_threads() == 3
        ort.process_one(frame)
        assert torch.get_num_threads() == 1
        ref.threads = 2  # another engine in the process, run in between, takes its own
        ref.process_one(frame)
        assert torch.get_num_threads() == 2
        seen = []  # torch's threads while ONNX Runtime runs the network: 1 from the start of the frame
        forward_gram = ort.backend.forward_gram
        monkeypatch.setattr(ort.backend, "forward_gram", lambda x: (seen.append(torch.get_num_threads()), forward_gram(x))[1])
        np.testing.assert_allclose(ort.process_one(frame).cam, got.cam, atol=1e-5)
        assert seen == [1] and torch.get_num_threads() == 1

        monkeypatch.setattr(onnx_backend, "agree", lambda *a, **k: False)
        _, fallen = _engines("resnet18")
        fallen.threads = 2
        assert torch.get_num_threads() == 2  # the session is still to be made (and checked by torch)
        fallen.process_one(scene(96, 128))
        assert fallen.backend.running == "torch" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_unset_threads_run_torchs_ops_on_one_thread_during_the_engines_calls_only(monkeypatch, tmp_path):
    """Engine.threads unset (a library user): ONNX Runtime's session takes the caller's count, the
    engine's own torch ops run on one thread while ONNX Runtime runs the network (prepare, forward,
    the rest of the frame), and the caller's count is back after each call; with torch running the
    network nothing changes."""
    from eigencam_live import engine as engine_module

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ref, ort = _engines("mobilenet_v3_small")
        seen = []
        prepare = engine_module.prepare
        monkeypatch.setattr(engine_module, "prepare",
                            lambda batch, spec: (seen.append(("prepare", torch.get_num_threads())), prepare(batch, spec))[1])
        for engine in (ort, ref):
            gram = engine.backend.forward_gram
            monkeypatch.setattr(engine.backend, "forward_gram",
                                lambda x, gram=gram: (seen.append(("forward", torch.get_num_threads())), gram(x))[1])
        frame = scene(96, 128)
        first = ort.process_one(frame)  # the session is made here, from the caller's count
        assert ort.backend.running == "onnxruntime" and torch.get_num_threads() == 2
        assert ort.backend._sessions[ort.layer].get_session_options().intra_op_num_threads == 2
        again = ort.process_one(frame)
        ahead = ort.prepare(frame)
        assert torch.get_num_threads() == 2
        np.testing.assert_allclose(ort.submit(ahead).result()[0].cam, first.cam, atol=1e-5)
        np.testing.assert_allclose(again.cam, first.cam, atol=1e-5)
        assert seen == [("prepare", 2), ("forward", 2), ("prepare", 1), ("forward", 1), ("prepare", 1), ("forward", 1)]
        assert torch.get_num_threads() == 2
        seen.clear()
        ref.process_one(frame)  # torch runs the network: the caller's count throughout
        assert seen == [("prepare", 2), ("forward", 2)] and torch.get_num_threads() == 2
        # an ONNX file: its session, made on the first frame, takes the caller's count too
        path = _export(ref.loaded.net, tmp_path / "small.onnx")
        onnx = Engine(EngineConfig(model=path, short_side=96))
        assert onnx.backend.preparing
        onnx.process_one(frame)
        assert not onnx.backend.preparing and torch.get_num_threads() == 2
        assert onnx.backend._sessions[onnx.layer].get_session_options().intra_op_num_threads == 2
    finally:
        torch.set_num_threads(before)


def test_a_preparing_thread_that_started_before_the_session_runs_torch_on_one_thread_after():
    """With OpenMP torch's count is each thread's own, fixed by its first op from the last count set
    anywhere. annotate's prepare thread starts while the session is still to be made (torch then
    has the network's count): once ONNX Runtime runs the network, its preparing runs on one thread."""
    import threading

    before = torch.get_num_threads()
    try:
        _, ort = _engines("mobilenet_v3_small")
        ort.threads = 2
        frame = scene(96, 128)
        started, made, seen = threading.Event(), threading.Event(), []

        def preparing() -> None:
            ort.prepare(frame)  # the session is still to be made: torch has the count here
            seen.append(torch.get_num_threads())
            started.set()
            assert made.wait(30)
            ort.prepare(frame)
            seen.append(torch.get_num_threads())

        worker = threading.Thread(target=preparing)
        worker.start()
        assert started.wait(30)
        ort.process_one(frame)  # makes the session: ONNX Runtime runs the network from now on
        made.set()
        worker.join(30)
        assert seen == [2, 1] and ort.backend.running == "onnxruntime"
    finally:
        torch.set_num_threads(before)


def test_an_engine_call_inside_another_gives_its_thread_the_callers_count_back(monkeypatch, tmp_path):
    """Threads unset: a call lowers torch's count to 1, which torch also makes the count a thread
    takes at its first op. A thread whose first calls (prepare, then another engine's first frame,
    which makes its session) run while another call is in flight has the process's count in them
    (the session takes it) and after them, not that 1."""
    import threading

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _, ort = _engines("mobilenet_v3_small")
        frame = scene(96, 128)
        ort.process_one(frame)  # the session made: ONNX Runtime runs the network
        inside, done, seen = threading.Event(), threading.Event(), {}
        forward_gram = ort.backend.forward_gram

        def held(x):
            inside.set()
            assert done.wait(30)
            return forward_gram(x)

        monkeypatch.setattr(ort.backend, "forward_gram", held)

        fresh = Engine(EngineConfig(model=_export(ort.loaded.net, tmp_path / "small.onnx"), short_side=96))

        def other() -> None:
            assert inside.wait(30)
            ort.prepare(frame)  # begins while process_one is in flight (prepare takes no lock)
            seen["after"] = torch.get_num_threads()
            fresh.process_one(frame)  # its session is made in this thread, now
            seen["session"] = fresh.backend._sessions[fresh.layer].get_session_options().intra_op_num_threads
            done.set()

        worker = threading.Thread(target=other)
        worker.start()
        ort.process_one(frame)
        worker.join(30)
        assert seen == {"after": 2, "session": 2} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_network_errors_keep_what_onnx_runtime_says_and_say_memory_as_memory():
    """ONNX Runtime puts what it got and expected on lines of their own (the first line alone said
    nothing); running out of memory, in any words, is a MemoryError (the front ends' own message)."""
    from eigencam_live.errors import NetworkError, network_errors

    class Fail(Exception):
        __module__ = "onnxruntime.capi.onnxruntime_pybind11_state"

    with pytest.raises(NetworkError) as err, network_errors("net.onnx failed on 1 frame of 96x64"):
        raise Fail("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: x for the "
                   "following indices\n index: 2 Got: 64 Expected: 224\n Please fix either the inputs/the model.")
    assert str(err.value).startswith("net.onnx failed on 1 frame of 96x64: Got invalid dimensions for input: x for "
                                     "the following indices index: 2 Got: 64 Expected: 224")
    for text in ("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB",
                 "CUDA out of memory. Tried to allocate 2.00 GiB"):
        with pytest.raises(MemoryError), network_errors("net failed"):
            raise RuntimeError(text)
    with pytest.raises(MemoryError), network_errors("net failed"):
        raise Fail("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer")


class Baked(torch.nn.Module):
    """A network that turns its shapes into Python numbers (traced as constants): its export holds
    its first input's size. ``slice``: another size takes the same slice (other numbers, silently);
    ``reshape``: another size cannot be reshaped (fails)."""

    def __init__(self, baked: str = "slice") -> None:
        super().__init__()
        self.baked = baked
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 4, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        f = self.features(x)
        h, w = int(f.shape[2]), int(f.shape[3])
        if self.baked == "slice":
            pooled = f[:, :, : h // 2, : w // 2].mean((2, 3))
        else:
            pooled = f.reshape(f.shape[0], 16, h * w).mean(2)
        return self.head(pooled)


@pytest.mark.parametrize("baked", ["slice", "reshape"])
def test_an_export_that_holds_its_first_input_size_is_checked_at_each_new_size(baked):
    """A network that turns its shapes into Python numbers is exported for its first input's size:
    at another size its graph gave other numbers silently (torchvision's swin_t) or failed
    (timm's mobilevit). Each new size is checked against torch once: torch runs it where they differ."""
    torch.manual_seed(0)
    net = Baked(baked)
    base = {"weights": "none", "short_side": 64, "layer": "features", "device": "cpu"}
    ref = Engine(EngineConfig(backend="torch", optimize=False, **base), model=net)
    ort = Engine(EngineConfig(backend="onnxruntime", **base), model=net)
    first, other = scene(64, 96), scene(64, 160)
    for frame in (first, first):
        got = ort.process_one(frame)
    assert ort.backend.running == "onnxruntime" and ort.backend.warning is None
    got, want = ort.process_one(other), ref.process_one(other)
    assert ort.backend.running == "torch" and "at 160x64" in ort.backend.warning
    assert ort.warnings == [ort.backend.warning] and ort.warning is None  # said to a library user too
    assert [p[1] for p in got.predictions] == pytest.approx([p[1] for p in want.predictions], abs=1e-5)
    ort.process_one(first)  # the size that agreed stays on ONNX Runtime
    assert ort.backend.running == "onnxruntime"


class _Branchy(torch.nn.Module):
    """A network with an ``if`` on its input's values: a trace keeps the branch its one input took."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 4, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        f = self.features(x)
        if x.mean() > 0:  # the line the warning names
            f = f.flip(-1) * 2.0
        return self.head(f[:, :, :, : f.shape[3] // 2].mean((2, 3)))


def test_a_network_that_branches_on_its_values_runs_on_torch_and_says_where():
    """Its export ran every frame down the first frame's branch: maps mirrored and other scores on
    the frames that go the other way, silently (ONNX Runtime was checked on the first frame only)."""
    torch.manual_seed(0)
    net = _Branchy()
    base = {"weights": "none", "short_side": 64, "layer": "features", "device": "cpu"}
    ref = Engine(EngineConfig(backend="torch", optimize=False, **base), model=net)
    ort = Engine(EngineConfig(backend="onnxruntime", **base), model=net)
    dark, bright = (np.full((64, 96, 3), v, np.uint8) for v in (20, 230))
    dark[10:30, 10:40], bright[10:30, 10:40] = 200, 40  # something to look at, the means as they were
    for frame in (dark, bright):
        got, want = ort.process_one(frame), ref.process_one(frame)
        assert _corr(got.cam, want.cam) > 0.999
        assert [p[1] for p in got.predictions] == pytest.approx([p[1] for p in want.predictions], abs=1e-5)
    line = next(i for i, text in enumerate(open(__file__, encoding="utf-8"), 1) if "the line the warning names" in text)
    assert ort.backend.running == "torch" and f"test_backends.py:{line}" in ort.backend.warning
    assert "reads a tensor's value into Python" in ort.backend.warning


def test_a_pool_to_a_fixed_grid_runs_on_onnxruntime_at_every_size():
    """VGG's and AlexNet's AdaptiveAvgPool2d((7, 7)) has no ONNX form from torch's exporter at a
    dynamic size ("input size not accessible"): torch ran them. It is exported as torch's bins,
    exactly: maps smaller than the grid, larger, and not a multiple of it."""

    class Grid(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 16, 1), torch.nn.ReLU())
            self.avgpool = torch.nn.AdaptiveAvgPool2d((3, 4))
            self.head = torch.nn.Linear(8 * 3 * 4, 6)

        def forward(self, x):
            return self.head(self.avgpool(self.features(x)).flatten(1))

    torch.manual_seed(0)
    net = Grid()
    base = {"weights": "none", "layer": "features", "device": "cpu"}
    for short, (h, w) in ((32, (32, 80)), (64, (64, 128)), (96, (96, 96)), (64, (64, 400))):  # maps 2x5 to 4x25
        ref = Engine(EngineConfig(backend="torch", optimize=False, short_side=short, **base), model=net)
        ort = Engine(EngineConfig(backend="onnxruntime", short_side=short, **base), model=net)
        frame = scene(h, w, seed=short)
        want, got = ref.process_one(frame), ort.process_one(frame)
        assert ort.backend.running == "onnxruntime" and ort.backend.warning is None, (h, w, ort.backend.warning)
        assert [p[0] for p in got.predictions] == [p[0] for p in want.predictions]
        assert [p[1] for p in got.predictions] == pytest.approx([p[1] for p in want.predictions], abs=1e-5)
        assert _corr(want.cam, got.cam) > 0.999


class _Grey(torch.nn.Module):
    """A grey network (its first convolution takes one channel: X-rays, inspection cameras)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, 4, 1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(16, 24, 3, 2, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(24, 4)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def test_a_grey_network_is_fed_the_frames_luma_on_every_backend_and_as_an_onnx_file(tmp_path, capsys):
    """Before, a network whose first convolution takes one channel failed on its first input ("expected
    input[1, 3, 224, 224] to have 1 channels"), and an ONNX file with a (B, 1, H, W) input was refused."""
    import cv2

    torch.manual_seed(0)
    net = _Grey()
    base = {"weights": "none", "short_side": 64, "layer": "features", "device": "cpu"}
    ref = Engine(EngineConfig(backend="torch", optimize=False, **base), model=net)
    assert ref.loaded.channels == 1 and (ref.loaded.mean, ref.loaded.std) == ((0.449,), (0.226,))
    frame = scene(64, 96, seed=3)  # the input's own size: no resize
    x = ref.preprocess(frame[None])
    luma = frame.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR
    assert x.shape == (1, 1, 64, 96)
    np.testing.assert_allclose(x[0, 0].numpy(), (luma / 255 - 0.449) / 0.226, atol=1e-5)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)  # OpenCV's, rounded to uint8
    assert np.abs(x[0, 0].numpy() * 0.226 * 255 + 0.449 * 255 - grey).max() <= 0.51

    want = ref.process_one(frame)
    onnx_path = _export(net, tmp_path / "grey.onnx", channels=1)
    for engine in (Engine(EngineConfig(backend="torch", **base), model=net),  # the traced copy
                   Engine(EngineConfig(backend="onnxruntime", **base), model=net),
                   Engine(EngineConfig(model=onnx_path, short_side=64))):
        got = engine.process_one(frame)
        assert engine.backend.warning is None and engine.loaded.channels == 1
        assert _corr(want.cam, got.cam) > 0.999
        assert [p for _, p in got.predictions] == pytest.approx([p for _, p in want.predictions], abs=1e-4)

    # one number each; three are refused in one line naming why
    own = Engine(EngineConfig(backend="torch", optimize=False, mean=(0.5,), std=(0.25,), **base), model=net)
    np.testing.assert_allclose(own.preprocess(frame[None])[0, 0].numpy(), (luma / 255 - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(ConfigError, match="needs one number: it takes grey input. Got 0.5 0.5 0.5") as info:
        Engine(EngineConfig(backend="torch", mean=(0.5, 0.5, 0.5), **base), model=net)
    assert info.value.field == "mean"
    from eigencam_live.cli import annotate_main

    from .media import write_clip

    clip = write_clip(tmp_path / "in.mp4", frames=3, size=(96, 64))
    out = tmp_path / "out.mp4"
    assert annotate_main([str(clip), "-o", str(out), "--model", onnx_path, "--std", "0.3", "0.3", "0.3", "-q"]) == 1
    assert "needs one number" in capsys.readouterr().err and not out.exists()
    assert annotate_main(["--mean", "0.5", "--std", "0.3", str(clip), "-o", str(out), "--model", onnx_path, "-q"]) == 0
    assert out.exists()


def test_a_tensorflow_style_onnx_file_channels_last_uint8_pixels_gives_the_networks_maps(tmp_path):
    """tf2onnx's exports take (B, H, W, 3), often uint8 pixels normalised inside the graph: they were
    refused ("looks channels-last", "feeds float32"). The input is given as the graph takes it."""

    class Pixels(torch.nn.Module):  # uint8 (B, H, W, 3) -> the network's normalised NCHW input
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x):
            return self.net((x.float().permute(0, 3, 1, 2) / 255 - self.mean) / self.std)  # (cast first)

    import warnings

    import onnx as _onnx

    loaded = _loaded("resnet18", seed=2)
    path = tmp_path / "tf style.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pixels(loaded.net).eval(), (torch.zeros(1, 96, 160, 3, dtype=torch.uint8),), str(path),
                          input_names=["images:0"], dynamic_axes={"images:0": {0: "b", 1: "h", 2: "w"}},
                          opset_version=17, dynamo=False)
    graph = _onnx.load(str(path))  # (tf2onnx often leaves the input's shape out: read from Cast, Transpose)
    graph.graph.input[0].type.tensor_type.ClearField("shape")
    _onnx.save(graph, str(path))
    onnx = Engine(EngineConfig(model=str(path), short_side=96))
    assert onnx.loaded.net.channels_last and onnx.loaded.net.dtype == np.uint8
    assert (onnx.loaded.mean, onnx.loaded.std) == ((0.0,) * 3, (1 / 255,) * 3)
    ref = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=96, backend="torch"), model=loaded)
    frame = scene(120, 200, corner="br", seed=4)
    want, got = ref.process_one(frame), onnx.process_one(frame)
    assert onnx.loaded.classes == 1000 and _corr(want.cam, got.cam) > 0.99  # (the input rounded to whole pixels)
    assert [p[0] for p in got.predictions[:3]] == [str(ref.loaded.labels.index(p[0])) for p in want.predictions[:3]]


def _first_ops(ops: list[tuple[str, object]]):
    """A graph whose input goes through ``ops`` ((op, constant), the input first) then a Relu."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, current = [], [], "x"
    for i, (op, value) in enumerate(ops):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), f"c{i}"))
        nodes.append(helper.make_node(op, [current, f"c{i}"], [f"y{i}"]))
        current = f"y{i}"
    nodes.append(helper.make_node("Relu", [current], ["out"]))
    return helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))],
                                               [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits))


_CHANNELS = (1, 3, 1, 1)


@pytest.mark.parametrize(("ops", "wants"), [
    ([("Sub", np.reshape([0.485, 0.456, 0.406], _CHANNELS)), ("Div", np.reshape([0.229, 0.224, 0.225], _CHANNELS))], 1),
    ([("Sub", np.reshape([123.7, 116.3, 103.5], _CHANNELS)), ("Div", np.reshape([58.4, 57.1, 57.4], _CHANNELS))], 255),
    ([("Mul", 1 / 255)], 255),  # Keras' Rescaling
    ([("Div", 127.5), ("Sub", 1.0)], 255),
    ([("Sub", np.reshape([103.9, 116.8, 123.7], _CHANNELS))], 255),  # Caffe's mean, 0-255 pixels
    ([("Mul", 255.0)], 1),  # [0, 1] pixels made 0-255
    ([("Mul", 1.0)], None),  # (a review: these were taken as normalising the input)
    ([("Add", 1e-6)], None),
    ([("Mul", np.reshape([1.02, 0.98, 1.01], _CHANNELS)), ("Add", np.reshape([0.01, -0.02, 0.0], _CHANNELS))], None),
    ([("Mul", 0.5), ("Add", 0.5)], None),  # it wants [-1, 1]: neither
    ([("Sub", np.full((1, 3, 8, 8), 0.45)), ("Mul", np.reshape([4.3, 4.4, 4.4], _CHANNELS))], None),  # a mean image
])
def test_the_range_a_graph_that_normalises_its_input_wants(ops, wants):
    from eigencam_live.backends.onnx_input import pixel_range

    assert pixel_range(_first_ops(ops), "x") == wants


@pytest.mark.parametrize("style", ["keras 0-255, layout not declared", "[0, 1] less 0.5, over 0.5"])
def test_an_onnx_file_that_normalises_its_float_input_itself_is_fed_pixels_as_it_wants_them(tmp_path, style):
    """A Keras network through tf2onnx takes float pixels and normalises them in its graph (a
    Rescaling layer): they were normalised with ImageNet's mean and std first, without a word (top-1
    wrong, maps r 0.15 on a trained network: an ONNX trial). Its first operations, constant scales
    and shifts, say the range it wants. An input whose layout is not declared, read channels first,
    was channels last (its first operation a Transpose): ONNX Runtime's own error was all it said."""
    import warnings

    import onnx

    keras = style.startswith("keras")
    mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if keras else ((0.5,) * 3, (0.5,) * 3)

    class Pixels(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

        def forward(self, x):
            x = (x.permute(0, 3, 1, 2) / 255 - self.mean) / self.std if keras else (x - self.mean) / self.std
            return self.net(x)

    loaded = _loaded("resnet18", seed=3)
    path = tmp_path / "own.onnx"
    shape = (1, 96, 160, 3) if keras else (1, 3, 96, 160)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pixels(loaded.net).eval(), (torch.zeros(shape),), str(path), input_names=["x"],
                          dynamic_axes={"x": {0: "b", 1: "h", 2: "w"} if keras else {0: "b", 2: "h", 3: "w"}},
                          opset_version=17, dynamo=False)
    if keras:  # tf2onnx often leaves the input's shape out
        graph = onnx.load(str(path))
        graph.graph.input[0].type.tensor_type.ClearField("shape")
        onnx.save(graph, str(path))
    own = Engine(EngineConfig(model=str(path), short_side=96))
    assert own.loaded.net.channels_last == keras and own.loaded.net.pixels == (255 if keras else 1)
    assert (own.loaded.mean, own.loaded.std) == ((0.0,) * 3, ((1 / 255,) if keras else (1.0,)) * 3)
    ref = Engine(EngineConfig(device="cpu", model="resnet18", weights="none", short_side=96, backend="torch",
                              mean=mean, std=std), model=loaded)
    frame = scene(120, 200, corner="br", seed=4)
    want, got = ref.process_one(frame), own.process_one(frame)
    assert _corr(want.cam, got.cam) > 0.999
    assert [p[0] for p in got.predictions[:3]] == [str(ref.loaded.labels.index(p[0])) for p in want.predictions[:3]]
    mine = Engine(EngineConfig(model=str(path), short_side=96, mean=mean, std=std))  # what the user says wins
    assert (mine.loaded.mean, mine.loaded.std) == (mean, std)


def test_an_onnx_file_whose_scores_are_not_its_first_output_and_its_attention_scores(tmp_path):
    """Boxes first, scores second: the predictions vanished and the default layer was the boxes read
    as tokens (4x7x7). A transformer's attention scores (B, heads, N, N) were listed as maps."""

    class BoxesFirst(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 8, 1), torch.nn.ReLU())
            self.boxes = torch.nn.Conv2d(16, 4, 1)
            self.head = torch.nn.Linear(16, 7)
            self.q, self.k = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

        def forward(self, x):
            f = self.features(x)
            tokens = f.flatten(2).transpose(1, 2)  # (B, N, 16)
            q, k = self.q(tokens).view(x.shape[0], -1, 2, 8).transpose(1, 2), self.k(tokens).view(x.shape[0], -1, 2, 8).transpose(1, 2)
            attention = (q @ k.transpose(-1, -2)) * 0.35  # (B, 2, N, N)
            mixed = (attention.softmax(-1) @ tokens.view(x.shape[0], 1, -1, 16)).mean(1)  # (B, N, 16)
            return self.boxes(f).flatten(2).transpose(1, 2), mixed.mean(1), self.head(mixed.mean(1))

    import warnings

    torch.manual_seed(0)
    net = BoxesFirst().eval()
    path = tmp_path / "boxes_first.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), input_names=["x"], output_names=["boxes", "embedding", "scores"],
                          dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    engine = Engine(EngineConfig(model=str(path), short_side=64, top_k=3))
    assert "boxes" not in engine.layer and engine.loaded.classes == 7  # the last map the scores come from
    got = engine.process_one(scene(64, 96))
    with torch.no_grad():
        want = torch.softmax(net(engine.preprocess(scene(64, 96)[None]))[2], 1)[0]  # not the (B, 16) embedding
    assert [p for _, p in got.predictions] == pytest.approx(want.sort(descending=True).values[:3].tolist(), abs=1e-5)
    listed = {layer.name: layer.shape for layer in engine.feature_layers()}
    assert not [n for n, shape in listed.items() if shape[-1] == shape[-2] and shape[0] == 2], listed
    assert "boxes" in listed and listed[engine.layer][0] == 16  # the boxes listed, to be chosen


def test_an_onnx_file_with_its_weights_in_an_external_file_runs_without_loading_them_twice(tmp_path):
    """Weights in external data (torch's exporter puts networks over 2 GB there): the graph was copied
    with its weights and serialised, which protobuf refuses over 2 GB ("Failed to serialize proto")."""
    import onnx

    path = _export(_loaded("mobilenet_v3_small", seed=4).net, tmp_path / "embedded.onnx")
    folder = tmp_path / "with data"
    folder.mkdir()
    onnx.save_model(onnx.load(path), str(folder / "split.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="split.onnx.data", size_threshold=0)
    assert (folder / "split.onnx").stat().st_size < 100_000 < (folder / "split.onnx.data").stat().st_size
    frame = scene(96, 128, seed=2)
    want = Engine(EngineConfig(model=path, short_side=96)).process_one(frame)
    split = Engine(EngineConfig(model=str(folder / "split.onnx"), short_side=96))
    assert sum(len(t.raw_data) for t in split.loaded.net.model.graph.initializer) == 0  # left in their file
    got = split.process_one(frame)
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-5)
    assert got.predictions == want.predictions
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    backbone = _export(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU()), tmp_path / "bb.onnx")
    with pytest.raises(ConfigError, match="bb.onnx gives no class scores: the labels would name nothing"):
        Engine(EngineConfig(model=backbone, labels=str(labels)))


def test_an_onnx_file_of_an_opset_newer_than_the_runtime_says_which_and_what_to_do(tmp_path):
    """ONNX Runtime's 400-character message was cut at 300, before its one useful fact (its last opset)."""
    import onnx

    from eigencam_live.errors import NetworkError

    model = onnx.load(_export(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()), tmp_path / "a.onnx"))
    model.opset_import[0].version = 99
    onnx.save(model, tmp_path / "new.onnx")
    with pytest.raises(NetworkError, match=r"new.onnx: its opset 99 is newer than this ONNX Runtime runs \(up to \d+\): "
                                           r"export it at opset \d+ or lower, or update onnxruntime$"):
        Engine(EngineConfig(model=str(tmp_path / "new.onnx")))


def test_a_factorys_changed_code_is_exported_again_and_a_refusal_of_it_forgotten(tmp_path):
    """A refused export was remembered under the network's name and weights: after the user fixed
    the code, the old refusal was said again and torch kept running it. The code is read from the
    classes themselves (a path factory's helper modules leave sys.modules once it has built) and
    from the factory's own file (a change inside build())."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "blocks.py").write_text("import torch\nclass Net(torch.nn.Sequential):\n    def forward(self, x):\n"
                                                 "        return super().forward(x)\n")
    (tmp_path / "nets" / "mynet.py").write_text("import torch\nfrom blocks import Net\n"
                                                "def build():\n    return Net(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n")
    source = f"{tmp_path / 'nets' / 'mynet.py'}:build"
    net = load_model(source).net
    digests = [export_cache.code_digest(net, source)]
    (tmp_path / "nets" / "blocks.py").write_text((tmp_path / "nets" / "blocks.py").read_text() + "# fixed\n")
    digests.append(export_cache.code_digest(net, source))
    (tmp_path / "nets" / "mynet.py").write_text((tmp_path / "nets" / "mynet.py").read_text() + "# fixed too\n")
    digests.append(export_cache.code_digest(net, source))
    (tmp_path / "nets" / "helpers.py").write_text("def scale(x):\n    return x * 2\n")  # a plain function beside it
    digests.append(export_cache.code_digest(net, source))
    assert len(set(digests)) == 4
    library = load_model("resnet18", "none").net  # installed code: the versions in the key say it
    assert export_cache.code_digest(library, "resnet18") == export_cache.code_digest(torch.nn.Sequential())

def test_a_short_side_a_fixed_size_network_cannot_take_is_said_not_ignored_in_silence(tmp_path, capsys):
    from eigencam_live.cli import annotate_main

    from .media import write_clip

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 4, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    path = _export(net, tmp_path / "fixed.onnx", size=(96, 128), dynamic=False)
    clip = write_clip(tmp_path / "in.mp4", frames=2, size=(96, 64))
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), "--model", path, "--short-side", "320", "-q"]) == 0
    assert "warning: --short-side 320 is not used: " in capsys.readouterr().err
    assert annotate_main([str(clip), "-o", str(tmp_path / "o1.mp4"), "--model", path, "--short-side", "224", "-q"]) == 0
    assert "warning: --short-side 224 is not used: " in capsys.readouterr().err  # typed, though the default
    assert annotate_main([str(clip), "-o", str(tmp_path / "o2.mp4"), "--model", path, "-q"]) == 0
    err = capsys.readouterr().err
    assert "short-side" not in err  # but the squeeze of a 3:2 frame into a 4:3 input is said
    assert "warning: fixed.onnx takes 128x96 input only: 96x64 frames are stretched to it" in err
    same = write_clip(tmp_path / "same.mp4", frames=2, size=(192, 144))  # the input's own aspect: nothing to say
    assert annotate_main([str(same), "-o", str(tmp_path / "o3.mp4"), "--model", path, "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_one_channel_gate_registered_before_the_stem_is_no_grey_network():
    """A spatial-attention gate (one channel in) registered before the RGB stem was taken for a grey
    network's first convolution: the network, which loaded before, was refused."""

    class Gated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate = torch.nn.Conv2d(1, 1, 7, padding=3)
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 4, 1), torch.nn.ReLU())
            self.head = torch.nn.Linear(16, 3)

        def forward(self, x):
            f = self.stem(x)
            f = f * torch.sigmoid(self.gate(f.mean(1, keepdim=True)))
            return self.head(f.mean((2, 3)))

    torch.manual_seed(0)
    engine = Engine(EngineConfig(weights="none", short_side=64, device="cpu", backend="torch"), model=Gated())
    assert engine.loaded.channels == 3 and engine.process_one(scene(64, 96)).predictions
    broken = Gated()
    broken.head = torch.nn.Linear(5, 3)  # a real mistake: said as the three-channel run met it, the grey one beside
    with pytest.raises(NetworkError, match=r"mat1 and mat2 .* \(as a grey network: .*expected input.* to have 3 channels"):
        Engine(EngineConfig(weights="none", short_side=64, device="cpu", backend="torch"), model=broken)
    assert Engine(EngineConfig(weights="none", short_side=64, device="cpu"), model=_Grey()).loaded.channels == 1


def test_an_onnx_file_whose_scores_no_listed_map_feeds_takes_its_last_map(tmp_path):
    """Scores from the pooled input (no map before them), a map for a second output: it failed to
    load ('has no layer with a spatial feature map')."""

    class Side(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(3, 4)
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU())

        def forward(self, x):
            return self.head(x.mean((2, 3))), self.features(x)

    import warnings

    path = tmp_path / "side.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Side().eval(), (torch.zeros(1, 3, 64, 64),), str(path), input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    engine = Engine(EngineConfig(model=str(path), short_side=64))
    assert engine.loaded.classes == 4 and engine.process_one(scene(64, 64)).cam.shape == (16, 16)


def test_exporting_leaves_a_users_own_onnx_form_of_the_pool_in_place(tmp_path):
    """The export registered its pool form over a user's own and then removed it: theirs was gone."""
    from eigencam_live.backends import export_forms

    def mine(g, x, output_size):
        return g.op("GlobalAveragePool", x)

    torch.onnx.register_custom_op_symbolic("aten::adaptive_avg_pool2d", mine, 17)
    try:
        with export_forms.dynamic_forms(17):
            assert export_forms._overridden("aten::adaptive_avg_pool2d", 17) and not export_forms._ours
        assert export_forms._overridden("aten::adaptive_avg_pool2d", 17)  # still theirs
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::adaptive_avg_pool2d", 17)
    with export_forms.dynamic_forms(17):
        assert export_forms._ours
    assert not export_forms._overridden("aten::adaptive_avg_pool2d", 17)  # ours removed after


def test_an_onnx_file_with_one_side_fixed_is_fed_square_at_that_side_and_says_so(tmp_path):
    """A width fixed at 96 and a free height: layers were listed at 224x224, then every 16:9 frame
    failed ('Got: 352 Expected: 224')."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 4, 1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 24 * 24, 3))
    import warnings

    path = tmp_path / "width.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 96, 96),), str(path), input_names=["x"],
                          dynamic_axes={"x": {2: "h"}}, opset_version=17, dynamo=False)
    engine = Engine(EngineConfig(model=str(path)))
    assert engine.loaded.spec.fixed_input == (96, 96) and "fixes its input's width at 96" in engine.loaded.note
    assert engine.process_one(scene(90, 160)).cam.shape == (24, 24)


def test_a_grey_modules_own_numbers_and_a_network_sized_for_another_input_say_what_to_do():
    """mean = 0.5 on a grey network was refused ('must be three numbers ... (as a grey network: must
    be one number)'); three numbers on it led with torch's channel error; a network sized for 256x256
    failed its 224 probe with torch's message alone."""
    torch.manual_seed(0)
    grey = _Grey()
    grey.mean, grey.std = 0.5, torch.tensor(0.25)
    engine = Engine(EngineConfig(weights="none", short_side=64, device="cpu", backend="torch"), model=grey)
    assert (engine.loaded.mean, engine.loaded.std) == ((0.5,), (0.25,))
    grey.mean = (0.5, 0.4, 0.3)
    with pytest.raises(ModelError, match=r"^_Grey\.mean must be one number \(its first convolution takes one channel"):
        Engine(EngineConfig(weights="none", short_side=64, device="cpu"), model=grey)
    sized = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 8, 1), torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 3))
    with pytest.raises(NetworkError, match=r"mat1 and mat2 shapes.*; a network that takes one input size says which: "
                                           r"input_size = \(H, W\) on the module"):
        Engine(EngineConfig(weights="none", device="cpu"), model=sized)


class _Wild(torch.nn.Module):
    """Forms ONNX files come in from other exporters (a trial of about 45 of them)."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 32, 1), torch.nn.ReLU())
        self.pos = torch.nn.Parameter(torch.randn(1, 16, 7, 7))  # a position embedding for 224x224 only
        self.embed, self.head, self.head_of_embed = torch.nn.Linear(16, 12), torch.nn.Linear(16, 5), torch.nn.Linear(12, 5)
        self.out, self.aux = torch.nn.Conv2d(16, 5, 1), torch.nn.Conv2d(3, 5, 1, 32)
        self.fine, self.deep = torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.Conv2d(8, 16, 3, 8, 1)

    def forward(self, x):
        f = self.features(x)
        pooled = f.mean((2, 3))
        if self.form == "one size":
            return self.head((f + self.pos).mean((2, 3)))
        if self.form == "embedding first":  # neutral names; the logits computed from the embedding
            embedding = self.embed(pooled)
            return embedding, self.head_of_embed(embedding)
        if self.form == "squeezed":  # the batch squeezed away
            return self.head(pooled).squeeze(0)
        if self.form == "token axis":
            return self.head(pooled)[:, None]
        if self.form == "no input shape":  # its input's shape not declared (refused as "not one image input")
            return self.head(pooled)
        if self.form == "top-k after":  # neutral names: the logits, then their top 3 (no scores of 3 classes)
            logits = self.head(pooled)
            return logits, logits.topk(3, 1).values
        if self.form == "pyramid":  # a backbone's levels, the finest first, no scores
            fine = self.fine(x).relu()
            return fine, self.deep(fine).relu()
        return self.out(f), self.aux(x)  # "segmentation": no scores, a main output and an auxiliary one


@pytest.mark.parametrize("form", ["one size", "embedding first", "squeezed", "token axis", "no input shape",
                                  "top-k after", "segmentation", "pyramid"])
def test_onnx_files_as_other_exporters_write_them(form, tmp_path):
    """A ViT-like graph with free sizes that runs at 224x224 only failed on the first non-square
    frame; neutral output names put the embedding before the logits read as the scores; scores
    ``(K,)`` or ``(B, 1, K)`` gave no predictions, in silence (and the stats CSV a probability of 0);
    a segmentation's auxiliary head was the default layer."""
    import csv
    import warnings

    from eigencam_live.cli import annotate_main

    torch.manual_seed(0)
    net = _Wild(form).eval()
    path = tmp_path / "wild.onnx"
    names = {"embedding first": ["out0", "out1"], "top-k after": ["out0", "out1"], "segmentation": ["out", "aux"],
             "pyramid": ["out0", "out1"]}.get(form, ["output"])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["x"], output_names=names,
                          dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    if form == "no input shape":
        import onnx

        graph = onnx.load(str(path))
        graph.graph.input[0].type.tensor_type.ClearField("shape")
        onnx.save(graph, str(path))
    engine = Engine(EngineConfig(model=str(path), short_side=224))
    frame = scene(120, 200, corner="br", seed=1)
    got = engine.process_one(frame)
    if form == "pyramid":  # the deepest level, as a classifier's map (the finest was taken, 64x the cells)
        assert engine.loaded.classes is None and got.cam.shape == (7, 12)
        return
    if form == "segmentation":
        assert engine.loaded.classes is None and got.predictions == []
        assert engine.layer != "aux" and engine.feature_layers()  # the main output's lineage
        image = tmp_path / "photo.png"
        import cv2

        cv2.imwrite(str(image), frame)
        assert annotate_main([str(image), "-o", str(tmp_path / "out.png"), "--model", str(path), "-q",
                              "--stats", str(tmp_path / "s.csv")]) == 0
        row = next(csv.DictReader((tmp_path / "s.csv").open()))
        assert row["label"] == "" and row["probability"] == ""  # no prediction: no probability of 0
        return
    x = engine.preprocess(frame[None])
    if form == "one size":
        assert engine.loaded.spec.fixed_input == (224, 224) and "runs at 224x224 only" in engine.loaded.note
        assert tuple(x.shape[-2:]) == (224, 224) and got.cam.shape == (7, 7)
    with torch.no_grad():
        scores = net(x)
    scores = (scores[1] if form == "embedding first" else scores[0] if form == "top-k after" else scores).reshape(1, -1)
    want = torch.softmax(scores, 1)[0].sort(descending=True).values[:5].tolist()
    assert engine.loaded.classes == 5 and [p for _, p in got.predictions] == pytest.approx(want, abs=1e-5)
    # frames in a batch: one run each for a graph of batch 1, their scores (K,) put together as (B, K)
    many = engine.process(np.stack([frame, scene(120, 200, corner="tl", seed=2), frame]))
    assert many[0].predictions == many[2].predictions == got.predictions and len(many[1].predictions) == 5


def _silu(i: int, o: int, stride: int = 1) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, stride, 1), torch.nn.SiLU())


class _Yolo(torch.nn.Module):
    """A YOLO-like detector as ultralytics exports it: three levels (strides 8, 16, 32) out of a
    neck, a head on each (YOLOv8's: a box and a class branch; YOLOv5's: one convolution), their
    predictions flattened and the three grids' positions joined (``(1, 10, N)``, ``(1, N, 11)``)."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.stem = torch.nn.Sequential(_silu(3, 8, 2), _silu(8, 16, 2), _silu(16, 16, 2))
        self.c4, self.c5, self.n4, self.n3 = _silu(16, 32, 2), _silu(32, 32, 2), _silu(64, 32), _silu(48, 16)
        self.d3, self.p4, self.d4, self.p5 = _silu(16, 16, 2), _silu(48, 32), _silu(32, 32, 2), _silu(64, 32)
        if form == "v8":
            self.box = torch.nn.ModuleList(torch.nn.Sequential(_silu(c, 16), torch.nn.Conv2d(16, 4, 1)) for c in (16, 32, 32))
            self.cls = torch.nn.ModuleList(torch.nn.Sequential(_silu(c, 16), torch.nn.Conv2d(16, 6, 1)) for c in (16, 32, 32))
        else:
            self.head = torch.nn.ModuleList(torch.nn.Conv2d(c, 33, 1) for c in (16, 32, 32))

    def forward(self, x):
        up = torch.nn.functional.interpolate
        c3 = self.stem(x)
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        t4 = self.n4(torch.cat([up(c5, scale_factor=2.0), c4], 1))
        p3 = self.n3(torch.cat([up(t4, scale_factor=2.0), c3], 1))
        p4 = self.p4(torch.cat([self.d3(p3), t4], 1))
        p5 = self.p5(torch.cat([self.d4(p4), c5], 1))
        if self.form == "v8":
            y = torch.cat([torch.cat([self.box[i](p), self.cls[i](p)], 1).flatten(2) for i, p in enumerate((p3, p4, p5))], 2)
            return torch.cat([y[:, :4], y[:, 4:].sigmoid()], 1)
        outs = [self.head[i](p) for i, p in enumerate((p3, p4, p5))]
        y = torch.cat([o.view(1, 3, 11, *o.shape[2:]).permute(0, 1, 3, 4, 2).reshape(1, -1, 11) for o in outs], 1).sigmoid()
        # each cell's place, from the levels' sizes (an anchor grid: their shapes, not their values)
        cells = torch.cat([torch.arange(p.shape[2] * p.shape[3]).repeat(3) * (256 // p.shape[2]) for p in (p3, p4, p5)])
        return torch.cat([y[..., :1] + cells[None, :, None], y[..., 1:]], 2)


@pytest.mark.parametrize("form", ["v8", "v5"])
def test_a_yolo_like_onnx_file_defaults_to_the_map_its_coarsest_head_reads(form, tmp_path):
    """YOLO exported to ONNX (its predictions of three grids joined, no class scores) defaulted to its
    coarsest head's raw predictions (a trial); the neck's last map, which that head reads, is where
    YOLO's Eigen-CAM is taken. Its flattened predictions are maps of 10 channels, not 9 + 1 tokens."""
    import warnings

    torch.manual_seed(0)
    net = _Yolo(form).eval()
    path = tmp_path / "yolo.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 256, 256),), str(path), input_names=["images"], output_names=["output0"],
                          dynamic_axes={"images": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    engine = Engine(EngineConfig(model=str(path), short_side=256))
    assert engine.layer == "/p5/p5.1/Mul_output_0" and engine.loaded.classes is None
    layers = {layer.name: layer.shape for layer in engine.feature_layers()}
    assert all(shape[1:] in ((32, 32), (16, 16), (8, 8), (64, 64), (128, 128)) for shape in layers.values()), layers
    if form == "v8":
        assert layers["/Reshape_2_output_0"] == (10, 8, 8)
    frame = scene(256, 256, corner="br", seed=1)
    got = engine.process_one(frame)
    with torch.no_grad(), ActivationCapture(net, ["p5"]) as cap:
        net(engine.preprocess(frame[None]))
    want = eigen_cam(cap.outputs["p5"], method="exact").maps[0].numpy()
    assert got.cam.shape == (8, 8) and _corr(got.cam, want) > 0.999


class _Boxes(torch.nn.Module):
    """A detector exported with its post-processing, as torchvision's are: per-box outputs (none at
    all above a threshold no score reaches, as Faster R-CNN's on a blank input)."""

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__()
        self.threshold = threshold
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 32, 1), torch.nn.ReLU())
        self.box, self.cls = torch.nn.Linear(16, 40), torch.nn.Linear(16, 10)

    def forward(self, x):
        pooled = self.features(x).mean((2, 3))[0]
        scores = self.cls(pooled).sigmoid()
        keep = scores >= self.threshold
        return self.box(pooled).view(10, 4)[keep], scores[keep], (scores * 90).long()[keep]


@pytest.mark.parametrize(("names", "threshold"), [(("boxes", "scores", "labels"), 0.0), (("out0", "out1", "out2"), 0.0),
                                                  ((None, None, None), 2.0)], ids=["named", "unnamed", "none kept"])
def test_an_onnx_detector_with_its_boxes_is_said_and_its_box_scores_are_no_classes(names, threshold, tmp_path):
    """torchvision's SSDlite exported to ONNX (boxes (N, 4), scores (N,), labels (N,)) was read as a
    classifier of N classes, in silence: top-1 "198" at 0.3 % in the stats (a trial); Faster
    R-CNN's, with no box on a blank input and torch's own output names, as 4 classes, and failed on
    the first frame (a review)."""
    import warnings

    torch.manual_seed(0)
    path = tmp_path / "det.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Boxes(threshold).eval(), (torch.zeros(1, 3, 224, 224),), str(path), input_names=["x"],
                          output_names=None if names[0] is None else list(names), dynamic_axes={"x": {2: "h", 3: "w"}},
                          opset_version=17, dynamo=False)
    if names[0] is None:
        import onnx

        names = tuple(o.name for o in onnx.load(str(path)).graph.output)
    engine = Engine(EngineConfig(model=str(path), short_side=224))
    got = engine.process_one(scene(120, 200, corner="br", seed=1))
    assert engine.loaded.classes is None and got.predictions == [] and got.cam.shape == (7, 12)
    assert f"det.onnx is a detector (its outputs {', '.join(names)} are per box)" in engine.loaded.note
    assert engine.loaded.note in engine.warnings


class _Scales(torch.nn.Module):
    """A classifier of 4 classes reading two scales, pooled and joined (the joined features of two
    grids are no detection head's)."""

    def __init__(self) -> None:
        super().__init__()
        self.s16 = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 16, 1), torch.nn.ReLU())
        self.s32 = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1),
                                       torch.nn.ReLU())
        self.fc = torch.nn.Linear(24, 4)

    def forward(self, x):
        f16 = self.s16(x)
        logits = self.fc(torch.cat([f16.mean((2, 3)), self.s32(f16).mean((2, 3))], 1))
        return logits, logits.softmax(1)


def test_a_classifier_joining_scales_keeps_its_last_map_and_4_classes_in_a_fixed_batch_are_no_boxes(tmp_path):
    """A review: a classifier's pooled scales, joined, were taken for a detection head's levels (the
    default one map too early); its 4 classes in a graph of a fixed batch of 8, (8, 4), for boxes."""
    import warnings

    torch.manual_seed(0)
    path = tmp_path / "scales.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Scales().eval(), (torch.zeros(8, 3, 224, 224),), str(path), input_names=["x"],
                          output_names=["logits", "probs"], opset_version=17, dynamo=False)
    engine = Engine(EngineConfig(model=str(path)))
    assert engine.layer == "/s32/s32.3/Relu_output_0" and engine.loaded.classes == 4
    got = engine.process_one(scene(224, 224, corner="br", seed=1))
    assert len(got.predictions) == 4 and "detector" not in (engine.loaded.note or "")


def test_settings_an_onnx_file_has_no_use_for_are_refused(tmp_path):
    """``--weights none`` ran the file's own weights in silence (random ones were asked for);
    ``--mean``/``--std`` for a graph that takes uint8 pixels normalised them twice: every answer
    'nematode' at 2 %."""

    class Pixels(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x.float() / 255, 8).flatten(1)[:, :6]

    import warnings

    path = tmp_path / "pixels.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pixels(), (torch.zeros(1, 3, 64, 64, dtype=torch.uint8),), str(path), input_names=["x"],
                          dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    with pytest.raises(ConfigError, match="holds its own weights"):
        EngineConfig(model=str(path), weights="none")
    with pytest.raises(ConfigError, match="uint8.*twice"):
        Engine(EngineConfig(model=str(path), mean=(0.5, 0.5, 0.5)))
