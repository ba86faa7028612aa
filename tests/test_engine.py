"""Engine: settings, reconfiguration, predictions, timings, devices and precisions, and geometry
(the map sits on the pixels it came from)."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from eigencam_live.cam import eigen_cam
from eigencam_live.engine import Engine, EngineConfig, input_size, resolve_device, resolve_dtype
from eigencam_live.errors import ConfigError, LayerNotFoundError, WeightsUnavailableError
from eigencam_live.models import ActivationCapture, LoadedModel, ModelSpec, load_model

from .conftest import scene


def pearson(a, b) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


@pytest.fixture(scope="module")
def r18() -> LoadedModel:
    torch.manual_seed(0)
    return load_model("resnet18", "none")


@pytest.fixture
def engine(r18) -> Engine:
    return Engine(EngineConfig(model="resnet18", weights="none", short_side=64, device="cpu"), model=r18)


# -- settings ------------------------------------------------------------------------------------
BAD_FIELDS = [
    ("model", "resnet19"),
    ("weights", ""),
    ("weights", 3),
    ("component", 0),
    ("component", True),
    ("component", 1.0),
    ("method", "svd"),
    ("short_side", 16),
    ("short_side", 224.0),
    ("device", "tpu"),
    ("precision", "fp8"),
    ("top_k", 0),
    ("top_k", 1001),
    ("smoothing", 1.0),
    ("smoothing", -0.1),
    ("smoothing", True),
    ("smoothing", "0.5"),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in BAD_FIELDS])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        EngineConfig(**{field: value})
    msg = str(info.value)
    assert msg.startswith(field) and repr(value) in msg or field in msg and repr(value) in msg


def test_numpys_numbers_are_taken_as_pythons():
    """A library trial: component=np.int64(2), from a loop over np.arange, was refused ("must be an
    integer... Got np.int64(2)"), as were numpy floats and a mean given as an array."""
    from eigencam_live.render import RenderConfig

    cfg = EngineConfig(component=np.int64(2), short_side=np.int32(320), smoothing=np.float32(0.5),
                       mean=np.array([0.485, 0.456, 0.406]), std=(np.float64(0.5),) * 3, top_k=np.uint8(3))
    assert (cfg.component, cfg.short_side, cfg.smoothing, cfg.mean, cfg.std, cfg.top_k) == \
        (2, 320, 0.5, (0.485, 0.456, 0.406), (0.5, 0.5, 0.5), 3)
    assert type(cfg.component) is int and type(cfg.smoothing) is float and all(type(v) is float for v in cfg.mean)
    assert RenderConfig(alpha=np.float32(0.25)).alpha == 0.25
    for bad in ({"component": np.float64(2.0)}, {"component": np.bool_(True)}, {"mean": np.array([1.5, 0, 0])}):
        with pytest.raises(ConfigError):
            EngineConfig(**bad)


def test_default_config_is_valid():
    cfg = EngineConfig()
    assert (cfg.component, cfg.method, cfg.device, cfg.precision, cfg.smoothing) == (1, "auto", "auto", "auto", 0.0)


def test_input_size_keeps_the_whole_frame():
    assert input_size(432, 768, 224) == (224, 384)  # 16:9 -> 7 x 12 cells
    assert input_size(480, 640, 224) == (224, 288)
    assert input_size(768, 432, 224) == (384, 224)  # portrait
    assert input_size(224, 224, 224) == (224, 224)
    assert input_size(20, 2000, 64) == (64, 256)  # 100:1, squeezed to 4:1 (MAX_INPUT_ASPECT)
    assert input_size(432, 768, 224, fixed=(224, 224)) == (224, 224)
    for h, w in [(432, 768), (100, 333), (1080, 1920)]:
        ih, iw = input_size(h, w, 224)
        assert ih % 32 == 0 and iw % 32 == 0
        assert abs(iw / ih - w / h) <= 16 / ih * (w / h) + 16 / ih  # within half a stride


def test_reconfigure_applies_from_the_next_call(engine):
    frame = scene(96, 128, corner="tl")
    first = engine.process_one(frame)
    assert first.cam.shape == (2, 3) and first.component == 1  # input 64 x 96
    engine.reconfigure(short_side=128)
    assert engine.process_one(frame).cam.shape == (4, 5)  # input 128 x 160
    engine.reconfigure(component=2)
    second = engine.process_one(frame)
    assert second.component == 2
    torch_cam = eigen_cam(_fmap(engine, frame), 2).maps[0].numpy()
    np.testing.assert_allclose(second.cam, torch_cam, atol=1e-5)
    engine.reconfigure(layer="layer3")
    assert engine.layer == "layer3" and engine.process_one(frame).cam.shape == (8, 10)
    before = engine.config
    with pytest.raises(ConfigError, match="component"):
        engine.reconfigure(component=0)
    with pytest.raises(ConfigError, match="nonsense"):
        engine.reconfigure(nonsense=1)
    with pytest.raises(LayerNotFoundError, match="layer4"):
        engine.reconfigure(layer="layer5")
    assert engine.config == before and engine.layer == "layer3"  # nothing half-applied
    assert engine.process_one(frame).cam.shape == (8, 10)
    # another model starts on its own default layer (a library trial: layer3 is no name in it), unless given
    engine.reconfigure(model="mobilenet_v3_small", weights="none")
    assert engine.config.layer is None and engine.layer == "features"
    engine.reconfigure(model="resnet18", layer="layer2")
    assert engine.layer == "layer2" and engine.process_one(frame).cam.shape == (16, 20)


def test_component_beyond_the_layers_rank_is_refused_from_its_shape(engine):
    engine.reconfigure(component=1, layer=None, short_side=64)
    engine.process_one(scene(96, 128))  # layer4 at 64 x 96 is (512, 2, 3): rank 6
    before = engine.config
    with pytest.raises(ConfigError, match="rank 6") as info:
        engine.reconfigure(component=7)
    assert info.value.field == "component" and engine.config == before
    engine.reconfigure(component=6)
    assert engine.process_one(scene(96, 128)).component == 6
    with pytest.raises(ConfigError, match="rank 4"):  # a squarer frame: 2 x 2 cells
        engine.process_one(scene(64, 64))
    engine.reconfigure(component=1)


def _fmap(engine: Engine, frame: np.ndarray) -> torch.Tensor:
    x = engine.preprocess(frame[None])
    with ActivationCapture(engine.loaded.net, engine.layer) as cap, torch.inference_mode():
        engine.loaded.net(x)
    return cap.map(tuple(x.shape[-2:]))


# -- results -------------------------------------------------------------------------------------
def test_result_fields_timings_and_top_k(engine):
    engine.reconfigure(top_k=7)
    frame = scene(120, 200, corner="br")
    res = engine.process_one(frame)
    assert set(res.timings) == {"preprocess", "forward", "cam", "finish"}
    assert all(isinstance(v, float) and v >= 0.0 for v in res.timings.values())
    assert res.timings["forward"] > 0.0
    # predictions: the network's own top-7, most likely first
    with torch.inference_mode():
        probs = torch.softmax(engine.loaded.net(engine.preprocess(frame[None])).float(), dim=1)[0]
    top_p, top_i = probs.topk(7)
    assert [label for label, _ in res.predictions] == [engine.loaded.labels[i] for i in top_i.tolist()]
    got = [p for _, p in res.predictions]
    np.testing.assert_allclose(got, top_p.numpy(), rtol=1e-5)
    assert got == sorted(got, reverse=True) and 0.0 < got[-1] <= got[0] <= 1.0
    # maps and spectrum
    assert res.cam.dtype == np.float32 and res.heatmap.dtype == np.float32
    assert res.heatmap.shape == frame.shape[:2]
    assert res.cam.min() == 0.0 and res.cam.max() == 1.0
    assert res.explained.shape == (5,) and np.all(np.diff(res.explained) <= 1e-6)
    assert 0.0 < res.explained_component <= res.explained.sum() <= 1.0 + 1e-5


def test_batch_equals_frame_by_frame(r18):
    frames = [scene(96, 128, corner=c, seed=i) for i, c in enumerate(("tl", "tr", "br"))]
    cfg = EngineConfig(model="resnet18", weights="none", short_side=64, device="cpu")
    batch = Engine(cfg, model=r18).process(frames)
    one = Engine(cfg, model=r18)
    for f, b in zip(frames, batch, strict=True):
        s = one.process_one(f)
        np.testing.assert_allclose(b.cam, s.cam, atol=1e-4)
        assert [lab for lab, _ in b.predictions] == [lab for lab, _ in s.predictions]


def test_prepared_in_another_thread_equals_process_and_follows_settings(r18):
    """A batch prepared ahead (as annotate's prepare thread does) gives what process gives; one
    prepared before a setting that changes the input is prepared again with the new setting."""
    frames = [scene(96, 128, corner=c, seed=i) for i, c in enumerate(("tl", "br"))]
    cfg = EngineConfig(model="resnet18", weights="none", short_side=64, device="cpu")
    direct = Engine(cfg, model=r18).process(frames)
    engine = Engine(cfg, model=r18)
    made = []
    worker = threading.Thread(target=lambda: made.append(engine.prepare(frames)))
    worker.start()
    worker.join()
    ahead = made[0]
    assert ahead.x.shape == (2, 3, 64, 96) and ahead.frames.shape == (2, 96, 128, 3) and ahead.seconds > 0
    got = engine.submit(ahead).result()
    for a, b in zip(got, direct, strict=True):
        np.testing.assert_array_equal(a.cam, b.cam)
        assert a.predictions == b.predictions
        assert a.timings["preprocess"] == pytest.approx(ahead.seconds * 1000 / 2)  # ms per frame
    kept = engine.prepare(frames)
    engine.reconfigure(component=2)  # the input does not depend on it: the batch is used as prepared
    used = engine.submit(kept).result()
    assert used[0].timings["preprocess"] == pytest.approx(kept.seconds * 1000 / 2) and used[0].component == 2
    stale = engine.prepare(frames)
    engine.reconfigure(short_side=128)
    again = engine.submit(stale).result()
    assert again[0].cam.shape == (4, 5)  # input 128 x 160, not the 64 x 96 prepared
    fresh = Engine(replace(cfg, short_side=128, component=2), model=r18).process(frames)
    np.testing.assert_array_equal(again[1].cam, fresh[1].cam)


def test_frames_are_validated(engine):
    with pytest.raises(ValueError, match="uint8"):
        engine.process(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="one size"):
        engine.process([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 65, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        engine.process(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        engine.process([])


# -- weights, devices, precisions ----------------------------------------------------------------
@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "offline (test)")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)


def test_fallback_untrained_sets_a_warning(offline):
    cfg = EngineConfig(model="mobilenet_v3_small", weights="imagenet", short_side=64, device="cpu")
    with pytest.raises(WeightsUnavailableError):
        Engine(cfg)
    engine = Engine(cfg, fallback_untrained=True)
    assert engine.warning is not None and "UNTRAINED" in engine.warning
    assert not engine.loaded.trained
    res = engine.process_one(scene(64, 96))
    assert res.cam.max() == 1.0
    engine.reconfigure(weights="none")  # an explicit choice: no warning left
    assert engine.warning is None


def test_device_and_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("fp32", cpu) == torch.float32
    with pytest.raises(ConfigError, match="bf16"):
        resolve_dtype("fp16", cpu)
    assert resolve_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ConfigError, match="cuda"):
            resolve_device("cuda")
        with pytest.raises(ConfigError, match="cuda"):
            Engine(EngineConfig(model="resnet18", weights="none", device="cuda"))


def test_fp16_on_cpu_is_refused_clearly(r18):
    with pytest.raises(ConfigError, match="fp16.*CUDA.*bf16"):
        Engine(EngineConfig(model="resnet18", weights="none", device="cpu", precision="fp16"), model=r18)
    assert next(r18.net.parameters()).dtype == torch.float32  # refused before touching the model


def test_bf16_on_cpu_works():
    torch.manual_seed(0)
    fp32 = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=96, device="cpu"))
    torch.manual_seed(0)
    bf16 = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=96, device="cpu", precision="bf16"))
    assert bf16.dtype == torch.bfloat16 and next(bf16.loaded.net.parameters()).dtype == torch.bfloat16
    frame = scene(96, 160, corner="tr")
    a, b = fp32.process_one(frame), bf16.process_one(frame)
    assert np.isfinite(b.heatmap).all() and b.cam.dtype == np.float32
    assert pearson(a.cam, b.cam) >= 0.95


@pytest.mark.parametrize("kernels", [True, False])
def test_bf16_without_the_cpus_kernels_is_said(monkeypatch, tmp_path, capsys, kernels):
    """A trial: bf16 on an AVX2 CPU ran 20x slower than fp32 (emulated) without a word."""
    from eigencam_live.backends import torch_backend
    from eigencam_live.cli import annotate_main

    monkeypatch.setattr(torch_backend, "bf16_kernels", lambda: kernels)
    config = EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu", precision="bf16")
    engine = Engine(config)
    said = engine.backend.warning
    assert (said is None) == kernels
    if not kernels:
        assert said.startswith("bf16 runs emulated on this CPU")
    engine.reconfigure(precision="fp32")
    assert engine.backend.warning is None
    cv2.imwrite(str(tmp_path / "a.png"), scene(64, 96))
    assert annotate_main([str(tmp_path / "a.png"), "-o", str(tmp_path / "out.png"), "--model", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--precision", "bf16", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("bf16 runs emulated") == (0 if kernels else 1), err  # said once, before the frames


def test_switching_precision_back_to_fp32_is_lossless():
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=96, device="cpu"))
    frame = scene(96, 160, corner="tr")
    before = engine.process_one(frame).cam
    engine.reconfigure(precision="bf16")
    engine.reconfigure(precision="fp32")
    assert next(engine.loaded.net.parameters()).dtype == torch.float32
    np.testing.assert_allclose(engine.process_one(frame).cam, before, atol=1e-4)


# -- geometry ------------------------------------------------------------------------------------
class TextureNet(nn.Module):
    """A network whose activations are known: per colour channel, the local texture energy
    (|Laplacian|) averaged over 32 x 32 cells. On conftest's scenes the checkered object is the only
    textured region, so the first principal component is the object and the map must peak on it."""

    def __init__(self) -> None:
        super().__init__()
        lap = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        edges = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        edges.weight.data[:] = lap
        self.features = nn.Sequential(edges, _Abs(), nn.AvgPool2d(32))
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


class _Abs(nn.Module):
    def forward(self, x):
        return x.abs()


def _texture_engine(short_side: int = 128) -> Engine:
    torch.manual_seed(0)
    model = LoadedModel(TextureNet().eval(), ModelSpec("texture", "features"), ["a", "b", "c", "d"], "none", False)
    return Engine(EngineConfig(weights="none", short_side=short_side, device="cpu"), model=model)


def _object_box(height: int, width: int, corner: str) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the object conftest.scene draws (same arithmetic)."""
    s = min(height, width) // 3
    cy = {"t": s // 2 + 4, "b": height - s // 2 - 4, "c": height // 2}[corner[0]]
    cx = {"l": s // 2 + 4, "r": width - s // 2 - 4, "c": width // 2}[corner[-1]]
    return cy - s // 2, cy - s // 2 + s, cx - s // 2, cx - s // 2 + s


@pytest.mark.parametrize(("height", "width"), [(240, 400), (400, 240), (432, 768)])
@pytest.mark.parametrize("corner", ["tl", "tr", "bl", "br", "c"])
def test_map_peak_sits_on_the_object(height, width, corner):
    """End to end through the engine (resize keeping the whole frame, forward, map, resize back):
    on a non-square frame, an object in one corner puts the heatmap's peak on that object."""
    engine = _texture_engine()
    frame = scene(height, width, corner=corner)
    y0, y1, x0, x1 = _object_box(height, width, corner)
    res = engine.process_one(frame)
    # Where the map is hottest: the centroid of the top plateau (upsampling replicates the
    # outer half-cells, so the single argmax pixel of a corner cell is the frame's corner itself).
    ys, xs = np.nonzero(res.heatmap >= 0.9 * res.heatmap.max())
    cy, cx = ys.mean(), xs.mean()
    assert y0 <= cy < y1 and x0 <= cx < x1, ((cx, cy), (y0, y1, x0, x1))
    # The reported peak (centre of the hottest feature cell) is on the object too.
    px, py = res.peak
    assert y0 <= py < y1 and x0 <= px < x1, ((px, py), (y0, y1, x0, x1))
    # and the heat is concentrated there: the object's mean heat beats the rest of the frame's
    mask = np.zeros(frame.shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    assert res.heatmap[mask].mean() > 2 * res.heatmap[~mask].mean()


def test_heatmap_is_the_cam_stretched_over_the_whole_frame(engine):
    """No crop, no offset: the heatmap is the feature-resolution map resized onto every pixel."""
    frame = scene(240, 400, corner="tr")
    res = engine.process_one(frame)
    mid = cv2.resize(res.cam, (3 * 8, 2 * 8), interpolation=cv2.INTER_CUBIC)  # 8 pixels a cell, then bilinear
    want = np.clip(cv2.resize(mid, (400, 240), interpolation=cv2.INTER_LINEAR), 0, 1)
    np.testing.assert_allclose(res.heatmap, want, atol=1e-6)
    bicubic = np.clip(cv2.resize(res.cam, (400, 240), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.abs(res.heatmap - bicubic).max() < 0.03  # as smooth as bicubic all the way
    # the peak is the centre of the hottest cell, in frame pixels
    i, j = np.unravel_index(np.argmax(res.cam), res.cam.shape)
    assert res.peak == (int((j + 0.5) * 400 / res.cam.shape[1]), int((i + 0.5) * 240 / res.cam.shape[0]))
    # the cam is Eigen-CAM of the layer's activations on the preprocessed whole frame
    np.testing.assert_allclose(res.cam, eigen_cam(_fmap(engine, frame)).maps[0].numpy(), atol=1e-5)
    # which tiles the frame: a (2, 3) grid over 240 x 400 (input 64 x 96)
    assert res.cam.shape == (2, 3)


def test_maps_are_enlarged_smoothly_and_alike_on_every_device():
    """One hot cell of a 7x7 map becomes a round spot, not a diamond (bilinear's level sets are
    squares turned 45 degrees: their diagonal radius is 0.85 of the axial one); values stay in
    [0, 1] though bicubic overshoots; the CPU kernel (OpenCV) and the device one (torch) agree."""
    from eigencam_live.engine import maps_on_frames

    spot = torch.zeros(1, 7, 7)
    spot[0, 3, 3] = 1.0
    up = maps_on_frames(spot, (700, 700))[0].numpy()
    hot = up >= 0.5 * up.max()
    axial = hot[350, 350:].sum()
    diagonal = sum(bool(hot[350 + i, 350 + i]) for i in range(350)) * np.sqrt(2)
    assert 0.95 < diagonal / axial < 1.05, (axial, diagonal)
    rng = np.random.default_rng(0)
    cams = torch.from_numpy(rng.random((3, 7, 7), dtype=np.float32))
    cams[:, 0, 0], cams[:, 0, 1] = 1.0, 0.0  # a step at the edge: bicubic overshoots there
    cpu = maps_on_frames(cams, (240, 400))
    raw = torch.nn.functional.interpolate(cams[:, None], size=(240, 400), mode="bicubic", align_corners=False)
    assert raw.max() > 1.0 or raw.min() < 0.0, "the case must overshoot to test the clip"
    assert cpu.shape == (3, 240, 400) and cpu.dtype == torch.float32
    assert float(cpu.min()) >= 0.0 and float(cpu.max()) <= 1.0
    np.testing.assert_allclose(cpu.numpy(), raw[:, 0].clamp(0, 1).numpy(), atol=0.03)  # bicubic, then bilinear
    mid = torch.nn.functional.interpolate(cams[:, None], size=(56, 56), mode="bicubic", align_corners=False)
    on_torch = torch.nn.functional.interpolate(mid, size=(240, 400), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(cpu.numpy(), on_torch[:, 0].clamp(0, 1).numpy(), atol=1e-5)  # = the device code
    if torch.cuda.is_available():
        np.testing.assert_allclose(maps_on_frames(cams.cuda(), (240, 400)).cpu().numpy(), cpu.numpy(), atol=1e-4)


def test_a_local_change_moves_the_real_networks_features_in_that_corner(engine):
    """The same geometry for a real (random-weight) resnet18: paint a blob into one corner of the
    frame; the feature cells that change most, mapped back like the heatmap, are in that corner."""
    engine.reconfigure(short_side=128, layer="layer3")  # 8 x 14 cells over 240 x 432
    base = scene(240, 432, corner="c")
    f0 = _fmap(engine, base)
    h, w = base.shape[:2]
    for corner, (ys, xs) in {"tl": (slice(0, 60), slice(0, 90)), "br": (slice(180, 240), slice(342, 432))}.items():
        frame = base.copy()
        frame[ys, xs] = (255, 0, 255)
        change = (_fmap(engine, frame) - f0).abs().sum(dim=1)[0].numpy()  # (h, w)
        heat = cv2.resize(change / change.max(), (w, h), interpolation=cv2.INTER_LINEAR)
        py, px = np.unravel_index(np.argmax(heat), heat.shape)
        # the strongest change is in the blob's quarter of the frame (receptive fields spread it
        # over neighbouring cells, so the blob itself is too strict a target)
        top, left = corner[0] == "t", corner[1] == "l"
        assert (py < h / 2) == top and (px < w / 2) == left, (corner, (px, py))
        quarter = heat[: h // 2] if top else heat[h // 2 :]
        quarter = quarter[:, : w // 2] if left else quarter[:, w // 2 :]
        rest = (heat.sum() - quarter.sum()) / (heat.size - quarter.size)
        assert quarter.mean() > 2 * rest, (corner, quarter.mean(), rest)  # most of the change is there


def test_scores_that_already_are_probabilities_are_not_softmaxed_again():
    """A network (or an ONNX file) ending in a softmax: its probabilities are shown as they are; a
    second softmax flattened them (a 0.39 top-1 of 1000 classes read 0.0015). Logits and
    log-probabilities still go through the softmax, row by row; bf16 probabilities, rounded, too are
    taken as they are."""
    from eigencam_live.results import class_probabilities

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.3, 0.2, 0.1, 0.4]])
    probs = torch.softmax(logits, dim=1)
    mixed = torch.stack([probs[0], logits[1]])  # one row a distribution, one of logits summing to 1
    torch.testing.assert_close(class_probabilities(probs), probs)
    torch.testing.assert_close(class_probabilities(probs.log()), probs)
    torch.testing.assert_close(class_probabilities(logits[:1]), probs[:1])
    got = class_probabilities(mixed)
    torch.testing.assert_close(got[0], probs[0])
    torch.testing.assert_close(got[1], logits[1])  # a row that is a distribution is taken as one
    assert class_probabilities(torch.zeros(2, 0)).shape == (2, 0)
    torch.testing.assert_close(class_probabilities(torch.tensor([[0.0], [0.99], [2.0]])),
                               torch.tensor([[0.5], [0.7291], [0.8808]]), atol=1e-4, rtol=0)  # one score: a logit
    many = torch.softmax(torch.randn(64, 1000, generator=torch.Generator().manual_seed(0)) * 4, dim=1)
    torch.testing.assert_close(class_probabilities(many.bfloat16()), many.bfloat16().float())  # not softmaxed again

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5),
                              torch.nn.Softmax(dim=1))
    engine = Engine(EngineConfig(device="cpu", backend="torch", short_side=64, top_k=5), model=net)
    frame = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        want = net(engine.preprocess(frame[None]))[0]
    got = engine.process_one(frame).predictions
    assert sorted(p for _, p in got) == pytest.approx(sorted(want.tolist()), abs=1e-5)


class _Sigmoided(nn.Module):
    """A multi-label (or yes/no) head ending in a sigmoid: its scores, known whatever the input
    (a zero Linear's bias), are each class's own probability; optionally in a dict."""

    def __init__(self, bias: list[float], named: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())
        self.head = nn.Linear(8, len(bias))
        nn.init.zeros_(self.head.weight)
        self.head.bias.data = torch.tensor(bias)
        self.named = named

    def forward(self, x):
        probs = torch.sigmoid(self.head(self.features(x).mean((2, 3))))
        return {"embedding": self.features(x).mean((2, 3)), "probabilities": probs} if self.named else probs


class _Squeezed(nn.Module):
    """A yes/no head that squeezes its one score: ``(B,)``; or a classifier that squeezes every
    dimension of one (``.squeeze()``: ``(K,)`` for one image)."""

    def __init__(self, bias: list[float]) -> None:
        super().__init__()
        self.net = _Sigmoided(bias)
        self.net.forward = lambda x: self.net.head(self.net.features(x).mean((2, 3)))

    def forward(self, x):
        return self.net(x).squeeze()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_head_that_squeezes_its_scores_gives_predictions(backend, tmp_path):
    """A library trial: a module returning (B,) gave no predictions, and nothing said why; and its
    ONNX file. Class indices (an argmax, integers) are no scores (a review: sigmoid(9) = 0.9999)."""
    frames = np.stack([scene(64, 96)] * 3)
    yes_no = Engine(EngineConfig(device="cpu", backend=backend, short_side=64), model=_Squeezed([1.0]))
    got = yes_no.process(frames)
    assert [r.predictions for r in got] == [[("0", pytest.approx(0.7311, abs=1e-4))]] * 3  # its sigmoid
    assert yes_no.process_one(frames[0]).predictions == got[0].predictions  # one image: a 0-d tensor
    one = Engine(EngineConfig(device="cpu", backend=backend, short_side=64, top_k=2), model=_Squeezed([0.0, 2.0, 1.0]))
    want = torch.softmax(torch.tensor([0.0, 2.0, 1.0]), 0)
    assert one.process_one(frames[0]).predictions == [("1", pytest.approx(float(want[1]), abs=1e-5)),
                                                      ("2", pytest.approx(float(want[2]), abs=1e-5))]
    argmax = _Squeezed([0.0, 2.0, 1.0])
    argmax.forward = lambda x: argmax.net(x).argmax(1)
    assert Engine(EngineConfig(device="cpu", backend=backend, short_side=64), model=argmax).process(frames)[0].predictions == []
    if backend == "onnxruntime":  # its ONNX file, (B,) for any batch
        import warnings

        path = tmp_path / "yes_no.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Squeezed([1.0]).eval(), (torch.zeros(2, 3, 64, 96),), str(path), input_names=["image"],
                              output_names=["logit"], dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}, "logit": {0: "b"}},
                              opset_version=17, dynamo=False)
        from_file = Engine(EngineConfig(model=str(path), short_side=64))
        assert [r.predictions for r in from_file.process(frames)] == [[("0", pytest.approx(0.7311, abs=1e-4))]] * 3


class _Counting(_Sigmoided):
    """A module that counts its calls in a buffer (its output does not depend on it)."""

    def __init__(self, bias: list[float]) -> None:
        super().__init__(bias)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


@pytest.mark.parametrize("change", ["step", "data", "replaced"])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_handed_networks_weights_changed_in_place_are_followed(backend, change, monkeypatch):
    """A library trial: a module handed to the engine, its weights changed between frames (a network
    in training): ONNX Runtime ran the copy exported at the first frame, the same scores for ever,
    while torch followed. Now torch takes over, said: at once after an optimiser's step (a version
    counter moves), within 2 s after a ``p.data`` write or a parameter replaced (none moves, a
    review). A buffer the forward writes (a count of calls) is no change of weights (a review)."""
    from eigencam_live.backends import onnx_backend

    now = [100.0]
    monkeypatch.setattr(onnx_backend, "_clock", lambda: now[0])
    frame = scene(64, 96)
    net = _Counting([0.0, 0.0, 0.0, 0.0, 0.0])
    engine = Engine(EngineConfig(device="cpu", backend=backend, short_side=64, top_k=5), model=net)
    assert engine.loaded.weights == "own"  # the weights it holds (a library trial: "imagenet" was logged)
    for _ in range(3):
        assert engine.process_one(frame).predictions[0][1] == pytest.approx(0.5, abs=1e-5)
        now[0] += 5.0
    assert engine.backend.running.startswith(backend) and not engine.warnings
    with torch.no_grad():
        if change == "step":  # in place, as an optimiser's step
            net.head.bias[3] += 3.0
        elif change == "data":
            net.head.bias.data[3] += 3.0
        else:
            net.head.bias = nn.Parameter(net.head.bias + torch.tensor([0.0, 0.0, 0.0, 3.0, 0.0]))
    if change != "step" and backend == "onnxruntime":
        engine.process_one(frame)  # within 2 s: not looked at yet
        now[0] += 2.5
    assert engine.process_one(frame).predictions[0] == ("3", pytest.approx(0.9526, abs=1e-4))
    assert engine.backend.running.startswith("torch") and engine.process_one(frame).predictions[0][0] == "3"
    assert any("changed after its export" in w for w in engine.warnings) == (backend == "onnxruntime")
    if backend == "onnxruntime":  # a network the engine loaded itself is not watched
        assert not Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64)).backend._watched


def test_a_handed_network_torch_runs_for_its_own_reason_keeps_that_reason_when_its_weights_change():
    """A review: a module that reads a value into Python runs on torch, said; a weight changed then
    replaced that reason with "changed after its export" (nothing was exported)."""
    net = _Sigmoided([0.0, 0.0, 0.0, 0.0, 0.0])
    plain = net.forward
    net.forward = lambda x: plain(x) * (1.0 if float(x.mean()) < 1e9 else 0.0)
    engine = Engine(EngineConfig(device="cpu", backend="onnxruntime", short_side=64), model=net)
    engine.process_one(scene(64, 96))
    said = list(engine.warnings)
    assert len(said) == 1 and "reads a tensor's value into Python" in said[0]
    with torch.no_grad():
        net.head.bias[3] += 3.0
    assert engine.process_one(scene(64, 96)).predictions[0][0] == "3" and engine.warnings == said


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_sigmoids_probabilities_are_shown_as_the_network_gives_them(backend, tmp_path):
    """A library trial: a multi-label network's sigmoid outputs (0.73, 0.89, ...) were softmaxed
    into 0.27, 0.23...; a yes/no network's 0.52 went through a second sigmoid (0.63). The same from
    its ONNX file. Logits stay logits."""
    frame = scene(64, 96)
    bias = [1.0, 2.05, -0.46, 0.18, -1.46]
    want = sorted(torch.sigmoid(torch.tensor(bias)).tolist(), reverse=True)
    for net in (_Sigmoided(bias), _Sigmoided(bias, named=True)):
        engine = Engine(EngineConfig(device="cpu", backend=backend, short_side=64, top_k=5), model=net)
        assert engine.loaded.scores_from == "sigmoid"
        assert [p for _, p in engine.process_one(frame).predictions] == pytest.approx(want, abs=1e-5)
    yes_no = Engine(EngineConfig(device="cpu", backend=backend, short_side=64), model=_Sigmoided([0.08]))
    assert [p for _, p in yes_no.process_one(frame).predictions] == pytest.approx([0.52], abs=1e-3)
    if backend == "onnxruntime":  # the file, read by its graph
        import warnings

        path = tmp_path / "multi.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Sigmoided(bias).eval(), (torch.zeros(1, 3, 64, 96),), str(path), input_names=["image"],
                              output_names=["probabilities"], dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}},
                              opset_version=17, dynamo=False)
        engine = Engine(EngineConfig(model=str(path), short_side=64, top_k=5))
        assert engine.loaded.scores_from == "sigmoid"
        assert [p for _, p in engine.process_one(frame).predictions] == pytest.approx(want, abs=1e-5)
    logits = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(8, 5))
    assert Engine(EngineConfig(device="cpu", backend=backend, short_side=64), model=logits).loaded.scores_from is None
