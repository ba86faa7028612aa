"""Edge cases found in review: resolution changes, folders given as files, ranks and 1x1 layers on
every path, blank frames in the video state, warnings that survive a failed reload."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from eigencam_live.annotate import plan_jobs
from eigencam_live.cam import SubspaceTracker, eigen_cam
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, LayerNotFoundError, SinkError, WeightsError
from eigencam_live.video import open_source

from .conftest import scene
from .media import write_clip


def _ts_segment(path, size, frames):
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_a_stream_that_changes_resolution_keeps_its_first_size(tmp_path):
    _ts_segment(tmp_path / "a.ts", (96, 64), 8)
    _ts_segment(tmp_path / "b.ts", (128, 96), 8)
    joined = tmp_path / "ab.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    src = open_source(str(joined))
    shapes, n = set(), 0
    while (frame := src.read()) is not None:
        shapes.add(frame.image.shape)
        n += 1
    src.close()
    assert n == 16 and shapes == {(64, 96, 3)}


def test_stats_or_heatmaps_naming_a_folder_are_refused_before_work(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3, size=(64, 48))
    (tmp_path / "folder").mkdir()
    for kw in ({"stats": str(tmp_path / "folder")}, {"heatmaps": str(tmp_path / "folder")}):
        with pytest.raises(SinkError, match="is a folder"):
            plan_jobs([str(clip)], str(tmp_path / "out.mp4"), force=True, **kw)


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    return Engine(EngineConfig(model="resnet18", weights="none", short_side=64, device="cpu"))


def test_component_beyond_the_rank_is_a_config_error_on_both_routes(engine):
    engine.process_one(scene(64, 96))  # layer4 at 64x96 input: 2x3 = 6 positions
    with pytest.raises(ConfigError, match="rank 6"):
        engine.reconfigure(component=40)
    engine.reconfigure(component=6)
    resident = Engine(engine.config, model=engine.loaded, resident=True)
    try:
        for e in (engine, resident):
            with pytest.raises(ConfigError, match="rank 4"):  # a square frame: 2x2 positions
                e.process_one(scene(64, 64))
    finally:
        engine.reconfigure(component=1)
    with pytest.raises(ConfigError):  # the math alone says so too (ConfigError is a ValueError)
        eigen_cam(torch.randn(1, 8, 2, 2), component=5)


def test_a_layer_without_a_spatial_map_is_refused_with_a_clear_error(engine):
    for layer, reason in (("avgpool", "1x1"), ("fc", r"shape \(1, 1000\) is not a feature map")):
        with pytest.raises(LayerNotFoundError, match=reason):
            engine.reconfigure(layer=layer)
        assert engine.layer == "layer4"
    with pytest.raises(LayerNotFoundError, match="is not a feature map"):
        Engine(EngineConfig(model="resnet18", weights="none", layer="fc", device="cpu"), model=engine.loaded)
    assert engine.process_one(scene(64, 96)).cam.shape == (2, 3)


def test_a_blank_frame_does_not_wipe_the_video_state():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(1, 64, 12, 12, generator=g)
    acts[:, :8, 3:6, 3:6] += 4.0
    tracker = SubspaceTracker()
    eigen_cam(acts, method="randomized", tracker=tracker)
    basis = tracker.basis.clone()
    eigen_cam(torch.zeros_like(acts), method="randomized", tracker=tracker)  # a black frame
    assert torch.equal(tracker.basis, basis)
    exact = eigen_cam(acts, method="exact").maps
    warm = eigen_cam(acts, method="randomized", tracker=tracker).maps
    assert float(np.corrcoef(warm.ravel(), exact.ravel())[0, 1]) > 0.999


def test_a_failed_reload_keeps_the_untrained_warning(monkeypatch):
    import eigencam_live.engine as engine_mod
    from eigencam_live.errors import WeightsUnavailableError
    from eigencam_live.models import load_model

    def offline(name, weights="imagenet", **kw):
        if weights == "imagenet":
            raise WeightsUnavailableError("offline")
        return load_model(name, weights, **kw)

    monkeypatch.setattr(engine_mod, "load_model", offline)
    eng = Engine(EngineConfig(model="resnet18", weights="imagenet", short_side=64), fallback_untrained=True)
    assert eng.warning and "UNTRAINED" in eng.warning
    with pytest.raises(WeightsError):
        eng.reconfigure(weights="/no/such/file.pth")
    assert eng.warning and "UNTRAINED" in eng.warning and eng.config.weights == "imagenet"


def test_elongated_frames_are_squeezed_within_4_to_1_and_absurd_ones_refused(engine):
    """A 10000x10 strip once became a 224000x224 network input (10 GB and rising): the input's long
    side is capped at 4x its short side, and beyond 100:1 a frame is refused in one line."""
    from eigencam_live.config import input_size

    assert input_size(10, 1000, 224) == (224, 896)  # 100:1 -> squeezed to 4:1
    assert input_size(432, 768, 224) == (224, 384)  # an ordinary frame is untouched
    assert input_size(2000, 100, 64) == (256, 64)
    strip = np.full((10, 1000, 3), 128, np.uint8)
    strip[:, 600:700] = 255
    result = engine.process_one(strip)
    assert result.cam.shape == (2, 8) and result.heatmap.shape == (10, 1000)  # a 64x256 input, stride 32
    with pytest.raises(ConfigError, match=r"10000x10 frame is more elongated than 100:1"):
        engine.process_one(np.zeros((10, 10000, 3), np.uint8))
    assert engine.process_one(scene(64, 96)).cam.shape == (2, 3)  # and the engine goes on


def test_weights_with_nan_or_an_empty_file_get_one_line(tmp_path):
    from eigencam_live.models import load_model

    torch.manual_seed(0)
    state = load_model("resnet18", "none").net.state_dict()
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    (tmp_path / "empty.pth").write_bytes(b"")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"fc.weight": Payload()}, tmp_path / "code.pth")
    (tmp_path / "text.pth").write_text("garbage\n")  # a trial: said to ask to run code
    # a trial: a list of labels was said to ask to run "lass_0.class_1" (pickle's GLOBAL opcode is "c")
    (tmp_path / "labels.txt").write_text("".join(f"class_{i}\n" for i in range(10)))
    cases = {"labels.txt": r"labels.txt: not a torch file \(expected a state_dict saved with torch.save\)",
             "nan.pth": r"NaN or infinite values \(first in 'layer2.0.conv1.weight'\)",
             "empty.pth": "is empty", "code.pth": r"asks to run \S*print when loaded, which is refused",
             "text.pth": r"text.pth: not a torch file \(expected a state_dict saved with torch.save\)"}
    for name, words in cases.items():
        with pytest.raises(WeightsError, match=words) as info:
            load_model("resnet18", str(tmp_path / name))
        message = str(info.value)
        assert "\n" not in message and "\x1b" not in message and "weights_only=False" not in message
