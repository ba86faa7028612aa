"""Object detectors on the one frame path: the stacked pyramid's map, boxes in frame pixels, drawing,
the detector's transform kept from resizing (so maps tile the frame), and mistakes in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, LayerNotFoundError, ModelError
from eigencam_live.models import DETECTORS, frame_detections, load_model
from eigencam_live.render import RenderConfig

from .conftest import scene
from .test_cam import reference


@pytest.fixture(scope="module")
def frcnn():
    torch.manual_seed(0)
    return Engine(EngineConfig(model="fasterrcnn_mobilenet_v3_large_320_fpn", weights="none", short_side=160,
                               method="exact", device="cpu", score=0.0))


@pytest.fixture(scope="module")
def ssd():
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model="ssdlite320_mobilenet_v3_large", weights="none", method="exact", device="cpu",
                                 score=0.0))
    with torch.no_grad():  # a random head of that init scores every box 1/91: spread the scores apart
        for p in engine.loaded.net.head.classification_head.parameters():
            p.normal_(0.0, 0.5)
    return engine


def _backbone(engine: Engine, frame: np.ndarray) -> tuple[torch.Tensor, dict]:
    """The backbone's input and output dict, by a hook of the test's own."""
    got = {}

    def hook(_m, inputs, output):
        got["x"], got["out"] = inputs[0], output

    handle = engine.loaded.net.backbone.register_forward_hook(hook)
    try:
        engine.process_one(frame)
    finally:
        handle.remove()
    return got["x"], got["out"]


@pytest.mark.parametrize("name", ["frcnn", "ssd"])
def test_the_map_is_the_svd_of_the_pyramid_stacked_on_one_grid(name, request):
    engine = request.getfixturevalue(name)
    frame = scene(180, 320, corner="tr")
    result = engine.process_one(frame)
    x, levels = _backbone(engine, frame)
    levels = list(levels.values())
    strides = {tuple(lv.shape[-2:]): x.shape[-2] / lv.shape[-2] for lv in levels}
    grid = min(sorted(strides, key=lambda hw: -hw[0] * hw[1]), key=lambda hw: abs(np.log(strides[hw] / 32)))
    stacked = torch.cat([F.adaptive_avg_pool2d(lv, grid) if lv.shape[-2] * lv.shape[-1] > grid[0] * grid[1]
                         else F.interpolate(lv, size=grid, mode="bilinear", align_corners=False) for lv in levels], 1)
    want, _, _ = reference(stacked)
    assert result.cam.shape == grid
    np.testing.assert_allclose(result.cam, want[0], atol=2e-4)


def test_the_detector_sees_the_engines_input_unresized_so_maps_tile_the_frame(frcnn, ssd):
    """The detector's own transform (resize to 320-800 px, pad) is kept from resizing: the backbone
    gets exactly the engine's input, the whole frame at short side 160 (an SSD: its fixed 320x320)."""
    frame = scene(180, 320)
    x, _ = _backbone(frcnn, frame)
    assert tuple(x.shape[-2:]) == frcnn.input_size((180, 320)) == (160, 288)
    torch.testing.assert_close(x, frcnn.preprocess(frame))
    x, _ = _backbone(ssd, frame)
    assert tuple(x.shape[-2:]) == (320, 320)
    torch.testing.assert_close(x, ssd.preprocess(frame))


def test_boxes_come_back_in_frame_pixels_best_first_above_the_score(frcnn):
    outputs = [{"boxes": torch.tensor([[0.0, 0.0, 288.0, 160.0], [144.0, 80.0, 300.0, 170.0], [10.0, 10.0, 20.0, 20.0]]),
                "scores": torch.tensor([0.6, 0.9, 0.2]), "labels": torch.tensor([1, 3, 2])}]
    frcnn.reconfigure(score=0.5)
    try:
        dets = frame_detections(outputs, frcnn.loaded.labels, frcnn.config.score, (160, 288), (180, 320))[0]
    finally:
        frcnn.reconfigure(score=0.0)
    assert [d.label for d in dets] == ["car", "person"] and [d.score for d in dets] == pytest.approx([0.9, 0.6])
    assert dets[1].box == pytest.approx((0.0, 0.0, 320.0, 180.0))  # the whole input is the whole frame
    assert dets[0].box == pytest.approx((160.0, 90.0, 320.0, 180.0))  # clipped to the frame


def test_a_box_is_drawn_where_the_model_says(ssd):
    frame = np.full((240, 320, 3), 90, np.uint8)
    first = ssd.process_one(frame)
    assert len(first.detections) > 1  # random weights, score 0: many boxes
    scores = [d.score for d in first.detections]
    assert scores == sorted(scores, reverse=True)
    best = first.detections[0]
    ssd.reconfigure(score=best.score)
    try:
        result = ssd.process_one(frame, render=RenderConfig(view="original"))
    finally:
        ssd.reconfigure(score=0.0)
    assert result.detections and all(d.score >= best.score for d in result.detections)
    assert result.predictions == [(d.label, d.score) for d in result.detections]
    picture = result.picture
    for det in result.detections:  # each box's frame: a white line on a dark outline
        x0, y0, x1, y1 = (int(round(v)) for v in det.box)
        ym = (y0 + y1) // 2
        assert picture[ym, min(x1, 319)].min() >= 200 or picture[ym, max(x0, 0)].min() >= 200, det
    plain = ssd.process_one(frame, render=RenderConfig(view="original", boxes=False)).picture
    assert (plain == 90).all()


def test_the_map_renormalised_inside_the_boxes_is_zero_outside(ssd):
    frame = scene(240, 320, corner="c")
    ssd.reconfigure(score=0.0)
    top = ssd.process_one(frame).detections[0]
    ssd.reconfigure(score=top.score)
    try:
        result = ssd.process_one(frame, render=RenderConfig(in_boxes=True))
    finally:
        ssd.reconfigure(score=0.0)
    heat = result.heatmap
    union = np.zeros(heat.shape, bool)
    for det in result.detections:  # min-max inside each box: every box reaches 1 somewhere
        x0, y0, x1, y1 = det.box
        r0, r1, c0, c1 = int(y0), int(np.ceil(y1)), int(x0), int(np.ceil(x1))
        assert heat[r0:r1, c0:c1].max() == pytest.approx(1.0)
        union[r0:r1, c0:c1] = True
    assert union.any() and not union.all()
    assert heat[~union].max() == 0.0  # and nothing outside the boxes


def test_every_detector_builds_with_a_backbone_map():
    """Cheap structural check of the whole list: built on the meta device, the default layer reads as
    one stacked map."""
    from torchvision.models import get_model

    for name in DETECTORS:
        with torch.device("meta"):
            net = get_model(name, weights=None, weights_backbone=None)
        assert hasattr(net, "backbone") and hasattr(net, "transform"), name


def test_detector_mistakes_are_one_line(frcnn):
    with pytest.raises(ConfigError, match=r"unknown model 'fasterrcnn_resnet50'\. Did you mean fasterrcnn_resnet50_fpn"):
        EngineConfig(model="fasterrcnn_resnet50")
    with pytest.raises(ModelError, match="unknown detector"):
        from eigencam_live.models.detectors import load_detector

        load_detector("yolo", "none")
    with pytest.raises(LayerNotFoundError, match=r"'roi_heads'.*not a tensor \(got tuple\)"):
        frcnn.reconfigure(layer="roi_heads")
    with pytest.raises(ConfigError, match="detectors run with torch"):
        frcnn.reconfigure(backend="onnxruntime")
    assert frcnn.layer == "backbone" and frcnn.backend.name == "torch"
    with pytest.raises(ConfigError, match="score"):
        EngineConfig(score=1.5)


def test_coco_labels_and_normalisation_come_from_torchvision():
    loaded = load_model("ssdlite320_mobilenet_v3_large", "none")
    assert loaded.detector and loaded.labels[1] == "person" and loaded.labels[3] == "car"
    assert loaded.mean == pytest.approx((0.5, 0.5, 0.5)) and loaded.spec.fixed_input == (320, 320)


def test_annotate_writes_boxes_as_json_lines_and_counts_them_in_the_stats(tmp_path, capsys):
    import csv
    import json

    from eigencam_live.cli import annotate_main

    from .media import NTSC, probe, write_clip
    from .test_cli import _one_error_line

    clip = write_clip(tmp_path / "clip.mp4", frames=5, size=(160, 96), rate=NTSC)
    out, lines, stats = tmp_path / "out.mp4", tmp_path / "boxes.jsonl", tmp_path / "s.csv"
    args = [str(clip), "-o", str(out), "--model", "ssdlite320_mobilenet_v3_large", "--weights", "none",
            "--score", "0", "--device", "cpu", "-q", "--detections", str(lines), "--stats", str(stats)]
    assert annotate_main(args) == 0, capsys.readouterr().err
    assert probe(out)["frames"] == 5
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert all(isinstance(r["pts"], float) for r in records) and records[1]["pts"] > records[0]["pts"]
    for r in records:
        assert r["boxes"], "score 0: every box the detector returns"
        for b in r["boxes"]:
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 <= x1 <= 160 and 0 <= y0 <= y1 <= 96 and 0 <= b["score"] <= 1 and b["label"]
    rows = list(csv.DictReader(stats.open()))
    assert [int(row["boxes"]) for row in rows] == [len(r["boxes"]) for r in records]
    # a classifier has no boxes to write: one line, nothing written
    again = [str(clip), "-o", str(tmp_path / "o2.mp4"), "--model", "mobilenet_v3_small", "--weights", "none",
             "--device", "cpu", "-q", "--detections", str(tmp_path / "b2.jsonl")]
    assert annotate_main(again) == 1
    assert "--detections needs an object detector" in _one_error_line(capsys.readouterr().err)
    assert not any(tmp_path.glob("o2*"))
    assert not (tmp_path / "o2.mp4").exists() and not (tmp_path / "b2.jsonl").exists()


def test_annotate_says_where_in_boxes_left_the_maps_blank(tmp_path, capsys):
    """A trial: --in-boxes with no box at --score drew every frame without a map, without a word."""
    import cv2

    from eigencam_live.cli import annotate_main

    from .media import probe, write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=3, size=(160, 96))
    photo = tmp_path / "photos" / "p.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((64, 80, 3), 90, np.uint8))
    common = ["--model", "ssdlite320_mobilenet_v3_large", "--weights", "none", "--device", "cpu", "-q", "--in-boxes"]
    # untrained, its boxes score about 1/91: none reaches 0.99
    assert annotate_main([str(clip), str(photo), "-o", str(tmp_path / "out"), *common, "--score", "0.99"]) == 0
    err = capsys.readouterr().err
    assert probe(tmp_path / "out" / "clip.eigencam.mp4")["frames"] == 3
    assert ("note: clip.mp4: all 3 frames had no box scoring at least 0.99, so their maps are blank (--in-boxes "
            "draws the map inside the boxes only; a lower --score keeps more boxes)") in err
    assert "note: p.png had no box scoring at least 0.99, so its map is blank" in err
    # every frame with its boxes: nothing to say
    assert annotate_main([str(clip), str(photo), "-o", str(tmp_path / "again"), *common, "--score", "0"]) == 0
    assert "blank" not in capsys.readouterr().err


class _TexturePyramid(torch.nn.Module):
    """A detector backbone whose levels are known: per colour channel, local texture energy
    (|Laplacian|) averaged over 16, 32 and 64 pixel cells (an FPN of three levels). On conftest's
    scenes the checkered object is the only textured region: the stacked map must peak on it."""

    out_channels = 3

    def __init__(self) -> None:
        super().__init__()
        lap = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
        self.edges = torch.nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        self.edges.weight.data[:] = lap

    def forward(self, x):
        from collections import OrderedDict

        energy = self.edges(x).abs()
        return OrderedDict((name, F.avg_pool2d(energy, cell, ceil_mode=True)) for name, cell in
                           (("0", 16), ("1", 32), ("pool", 64)))


def _texture_detector() -> Engine:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    from eigencam_live.models import LoadedModel, ModelSpec
    from eigencam_live.models.detectors import _as_given

    torch.manual_seed(0)
    net = FasterRCNN(_TexturePyramid(), num_classes=2,
                     rpn_anchor_generator=AnchorGenerator(((32,), (64,), (128,)), ((1.0,),) * 3),
                     box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2)).eval()
    _as_given(net.transform)  # as load_detector does: the engine's input taken as given
    loaded = LoadedModel(net, ModelSpec("texture-detector", "backbone"), ["bg", "object"], "none", False,
                         detector=True)
    return Engine(EngineConfig(weights="none", short_side=128, device="cpu", backend="torch"), model=loaded)


@pytest.mark.parametrize(("height", "width"), [(240, 400), (400, 240), (432, 768)])
@pytest.mark.parametrize("corner", ["tl", "tr", "bl", "br", "c"])
def test_the_stacked_map_sits_on_the_object_through_the_detectors_transform(height, width, corner):
    """As the classifiers' alignment test: the whole frame through the engine and the detector's own
    transform (told not to resize), three pyramid levels stacked on one grid, the map laid back over
    the frame: an object in one corner of a non-square frame puts the map's peak on it."""
    from .test_engine import _object_box

    engine = _texture_detector()
    frame = scene(height, width, corner=corner)
    y0, y1, x0, x1 = _object_box(height, width, corner)
    result = engine.process_one(frame)
    assert result.detections is not None
    ys, xs = np.nonzero(result.heatmap >= 0.9 * result.heatmap.max())
    cy, cx = ys.mean(), xs.mean()
    assert y0 <= cy < y1 and x0 <= cx < x1, ((cx, cy), (y0, y1, x0, x1))
    px, py = result.peak
    assert y0 <= py < y1 and x0 <= px < x1, ((px, py), (y0, y1, x0, x1))


def test_yolo_without_ultralytics_is_one_line_naming_the_install(monkeypatch, tmp_path, capsys):
    import sys

    from eigencam_live.cli import annotate_main

    from .media import NTSC, write_clip
    from .test_cli import _one_error_line

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # as where it is not installed
    clip = write_clip(tmp_path / "c.mp4", frames=2, size=(64, 64), rate=NTSC)
    assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "yolo11n.yaml", "-q"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "needs the ultralytics package" in line and "pip install --no-deps ultralytics" in line


def test_yolo_when_installed_maps_its_neck_and_decodes_boxes():
    pytest.importorskip("ultralytics", reason="ultralytics is optional (it needs opencv-python); see the README")
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model="yolo11n.yaml", short_side=160, method="exact", device="cpu", score=0.0))
    assert engine.layer == "neck" and engine.loaded.detector and not engine.loaded.trained
    assert len(engine.loaded.labels) == 80 and engine.backend.name == "torch"
    net = engine.loaded.net
    got = {}
    handle = net.model.model[-1].register_forward_pre_hook(lambda _m, args: got.update(maps=args[0]))
    frame = scene(180, 320, corner="tr")
    try:
        result = engine.process_one(frame, render=RenderConfig())
    finally:
        handle.remove()
    maps = got["maps"]  # P3, P4, P5 at strides 8, 16, 32 of the 160x288 input
    assert [tuple(m.shape[-2:]) for m in maps] == [(20, 36), (10, 18), (5, 9)]
    grid = (5, 9)
    stacked = torch.cat([F.adaptive_avg_pool2d(m, grid) for m in maps], 1)
    want, _, _ = reference(stacked)
    np.testing.assert_allclose(result.cam, want[0], atol=2e-4)
    assert isinstance(result.detections, list) and result.picture.shape == (180, 320, 3)
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in net.modules())  # none left behind
    assert all(0 <= d.box[0] <= d.box[2] <= 320 and 0 <= d.box[1] <= d.box[3] <= 180 for d in result.detections)


def test_review_fixes_batch_precision_backend_and_resident_in_boxes(frcnn, ssd):
    """Found in review: a per-proposal layer offered and then failing every frame; bf16 detectors on
    the CPU crashing in NMS; a detector handed over as a module given to ONNX Runtime; the resident
    route's heatmap ignoring in_boxes."""
    from eigencam_live.models import load_model

    names = [layer.name for layer in frcnn.feature_layers()]
    assert "roi_heads.box_roi_pool" not in names and "backbone" in names
    with pytest.raises(LayerNotFoundError, match="maps for 1 image"):
        frcnn.reconfigure(layer="roi_heads.box_roi_pool")
    with pytest.raises(ConfigError, match="detectors run in fp32 on the CPU"):
        frcnn.reconfigure(precision="bf16")
    handed = Engine(EngineConfig(score=0.0, device="cpu"), model=load_model("ssdlite320_mobilenet_v3_large", "none"))
    assert handed.backend.name == "torch"
    frame = scene(240, 320, corner="c")
    ssd.reconfigure(score=0.0)
    top = ssd.process_one(frame).detections[0]
    ssd.reconfigure(score=top.score)
    try:
        look = RenderConfig(in_boxes=True)
        host = ssd.process_one(frame, render=look)
        resident = Engine(ssd.config, model=ssd.loaded, resident=True).process_one(frame, render=look)
    finally:
        ssd.reconfigure(score=0.0)
    assert resident.detections == host.detections
    np.testing.assert_allclose(resident.heatmap, host.heatmap, atol=1e-4)


def test_mask_rcnn_masks_are_carried_in_frame_pixels_and_drawn_faintly():
    """Mask R-CNN's masks (input pixels, soft) come back as frame-pixel booleans on their boxes and
    lighten the picture inside them; the JSON has boxes only."""
    from eigencam_live.render import draw_boxes

    engine = Engine(EngineConfig(model="maskrcnn_resnet50_fpn", weights="none", short_side=64, device="cpu"))
    soft = torch.zeros(1, 1, 64, 96)
    soft[..., 16:48, 24:72] = 0.9  # the object, in the 64x96 input
    outputs = [{"boxes": torch.tensor([[24.0, 16.0, 72.0, 48.0]]), "scores": torch.tensor([0.9]),
                "labels": torch.tensor([1]), "masks": soft}]
    (det,) = frame_detections(outputs, engine.loaded.labels, engine.config.score, (64, 96), (120, 180))[0]
    assert det.label == "person" and det.box == pytest.approx((45.0, 30.0, 135.0, 90.0))
    assert det.mask.shape == (120, 180) and det.mask.dtype == bool
    ys, xs = np.nonzero(det.mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (30, 89, 45, 134)  # the box's pixels, scaled 1.875x
    assert set(det.as_dict()) == {"box", "label", "score"}
    picture = draw_boxes(np.full((120, 180, 3), 90, np.uint8), [det], 180)
    assert (picture[60, 90] == 90 + (255 - 90) // 3).all()  # lightened by a third inside the mask
    assert (picture[5, 5] == 90).all()  # untouched outside it


def test_a_detector_from_a_factory_runs_as_the_detector_by_name(tmp_path, monkeypatch):
    """torchvision's detector built by your own factory (other classes, a keypoint head) is run as a
    detector: before, its default layer was a head's last conv, it gave no boxes and its input was
    normalised with ImageNet's numbers instead of its transform's."""
    (tmp_path / "mydet.py").write_text(
        "import torchvision\n"
        "def build():\n"
        "    return torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)\n"
        "def hands():\n"
        "    net = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(\n"
        "        weights=None, weights_backbone=None, num_classes=3)\n"
        "    net.labels = ['background', 'left', 'right']\n"
        "    return net\n"
        "class Wrap(torch.nn.Module):  # a wrapper that only calls it\n"
        "    def __init__(self, extra=False):\n"
        "        super().__init__()\n"
        "        self.det = build()\n"
        "        self.extra = torch.nn.Conv2d(3, 3, 1) if extra else None\n"
        "    def forward(self, x):\n"
        "        return self.det(x if self.extra is None else self.extra(x))\n"
        "class OnItsBackbone(torch.nn.Module):  # a classifier on a detector's backbone: no detector\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.det, self.fc = build(), torch.nn.Linear(672, 3)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.det.backbone(x)['0'].mean((2, 3)))\n"
        "class WrapHands(torch.nn.Module):  # a wrapper of a detector with class names of its own\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.det = hands()\n"
        "    def forward(self, x):\n"
        "        return self.det(x)\n")
    (tmp_path / "mydet.py").write_text("import torch\n" + (tmp_path / "mydet.py").read_text())
    monkeypatch.chdir(tmp_path)
    by_name = load_model("ssdlite320_mobilenet_v3_large", "none")
    with torch.no_grad():  # a random head of that init scores every box 1/91: spread the scores apart
        for p in by_name.net.head.classification_head.parameters():
            p.normal_(0.0, 0.5)
    mine = load_model("mydet:build")
    mine.net.load_state_dict(by_name.net.state_dict())
    assert mine.detector and mine.spec.layer == "backbone" and mine.labels == by_name.labels
    assert (mine.mean, mine.std, mine.spec.fixed_input) == (by_name.mean, by_name.std, by_name.spec.fixed_input)
    cfg = {"weights": "none", "method": "exact", "device": "cpu", "score": 0.0}
    frame = scene(180, 320, corner="tr")
    want = Engine(EngineConfig(model="ssdlite320_mobilenet_v3_large", **cfg), model=by_name).process_one(frame)
    engine = Engine(EngineConfig(model="mydet:build", **cfg), model=mine)
    got = engine.process_one(frame)
    assert engine.layer == "backbone" and engine.backend.name == "torch"
    assert len(got.detections) == len(want.detections) > 0
    assert [(d.box, d.label) for d in got.detections] == [(d.box, d.label) for d in want.detections]
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-5)

    # wrapped in a module of one's own that adds no layer: the detector inside is run (before, its
    # transform resized the input and the default layer was rpn.head.bbox_pred, with no boxes)
    wrapped = load_model("mydet:Wrap")
    wrapped.net.load_state_dict(by_name.net.state_dict())
    assert wrapped.detector and wrapped.spec.layer == "backbone" and "wraps a torchvision detector (det)" in wrapped.note
    got = Engine(EngineConfig(model="mydet:Wrap", **cfg), model=wrapped).process_one(frame)
    assert [(d.box, d.label) for d in got.detections] == [(d.box, d.label) for d in want.detections]
    assert not load_model("mydet:Wrap", "none").net.training
    import functools

    import mydet  # noqa: F401  # a wrapper with a layer of its own runs as it is: its forward is its own,
    mydet.extra = functools.partial(mydet.Wrap, extra=True)  # as a detector (a trial: its boxes were drawn,
    extra = load_model("mydet:extra", "none")  # --score and --detections refused, the map a head's)
    assert extra.detector and extra.spec.layer == "det.backbone" and "with layers of its own" in extra.note
    assert (extra.mean, extra.std) == ((0.0,) * 3, (1.0,) * 3)  # pixels in [0, 1]: its detector normalises them
    with torch.no_grad():  # its own layer the identity: the detector's boxes and maps, normalised once
        extra.net.extra.weight.copy_(torch.eye(3)[:, :, None, None])
        extra.net.extra.bias.zero_()
    extra.net.det.load_state_dict(by_name.net.state_dict())
    engine = Engine(EngineConfig(model="mydet:extra", **cfg), model=extra)
    got = engine.process_one(frame)
    assert engine.layer == "det.backbone" and engine.loaded.labels == by_name.labels
    assert [d.label for d in got.detections] == [d.label for d in want.detections]
    np.testing.assert_allclose([d.box for d in got.detections], [d.box for d in want.detections], atol=0.05)
    np.testing.assert_allclose(got.cam, want.cam, atol=1e-4)
    # a network of its own that uses a part of one (its backbone) is no detector: fed as any network (a review)
    on_backbone = load_model("mydet:OnItsBackbone", "none")
    assert not on_backbone.detector and on_backbone.mean == (0.485, 0.456, 0.406) and on_backbone.note is None
    assert not on_backbone.net.det.transform.__dict__.get("resize")  # its detector's transform left as it was

    hands = load_model("mydet:hands", "none")
    assert hands.detector and hands.labels == ["background", "left", "right"] and hands.spec.fixed_input is None
    # wrapped, its names are still its own (a trial: boxes labelled "2" for "dog")
    assert load_model("mydet:WrapHands", "none").labels == ["background", "left", "right"]
    from eigencam_live.models.detectors import coco_labels

    assert coco_labels(hands.net) == [] and len(coco_labels(by_name.net)) == 91


def test_annotate_takes_detections_from_a_factorys_detector_and_refuses_a_factorys_classifier(tmp_path, monkeypatch,
                                                                                             capsys):
    import json

    from eigencam_live.cli import annotate_main

    from .media import write_clip
    from .test_cli import _one_error_line

    (tmp_path / "nets.py").write_text(
        "import torchvision\n"
        "def det():\n"
        "    return torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)\n"
        "def cls():\n"
        "    return torchvision.models.mobilenet_v3_small(num_classes=4)\n")
    monkeypatch.chdir(tmp_path)
    clip = write_clip(tmp_path / "clip.mp4", frames=2, size=(160, 96))
    args = [str(clip), "-o", "out.mp4", "--model", "nets:det", "--score", "0", "--device", "cpu", "-q",
            "--detections", "boxes.jsonl"]
    assert annotate_main(args) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "boxes.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1] and all(r["boxes"] for r in records)
    again = [str(clip), "-o", "o2.mp4", "--model", "nets:cls", "--device", "cpu", "-q", "--detections", "b2.jsonl"]
    assert annotate_main(again) == 1
    assert "--detections needs an object detector; nets:cls is not one" in _one_error_line(capsys.readouterr().err)
    assert not any(tmp_path.glob("o2*")) and not (tmp_path / "b2.jsonl").exists()


def test_a_score_under_the_detectors_own_threshold_shows_the_boxes_under_it(frcnn):
    """torchvision's Faster R-CNN drops boxes under 0.05 itself (FCOS under 0.2): a lower score showed
    no more boxes ("no boxes on this frame" at 0). Random weights score every class about 1/91."""
    frame = scene(180, 320, corner="tr")
    try:
        frcnn.reconfigure(score=0.0)
        low = frcnn.process_one(frame).detections
        assert frcnn.loaded.net.roi_heads.score_thresh == pytest.approx(1e-3)
        frcnn.reconfigure(score=0.05)
        assert frcnn.process_one(frame).detections == []
        assert frcnn.loaded.net.roi_heads.score_thresh == pytest.approx(0.05, rel=1e-5)
    finally:
        frcnn.reconfigure(score=0.0)
    assert low and all(1e-3 <= d.score < 0.05 for d in low)


def test_a_detector_handed_to_the_engine_is_left_as_its_owner_made_it():
    """Its transform was told to take the input as given and its score threshold set each frame,
    on the caller's own module: their own calls then ran unresized and with the engine's threshold."""
    import torchvision

    net = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    before = (net.score_thresh, net.transform.resize)
    engine = Engine(EngineConfig(weights="none", device="cpu", score=0.0), model=net)
    engine.process_one(scene(180, 320))
    assert (net.score_thresh, net.transform.resize) == before and engine.loaded.net is not net
    assert net.training  # still training: its next call gives the losses it asks for
    import threading

    net.lock = threading.Lock()  # a module that cannot be copied: one line
    with pytest.raises(ModelError, match="cannot be copied to run as a detector"):
        Engine(EngineConfig(weights="none", device="cpu"), model=net)


def test_a_detectors_labels_of_another_length_than_its_classes_are_refused(tmp_path, monkeypatch):
    """A classifier's were refused; a detector's were taken (boxes named by the wrong list) or
    dropped in silence (boxes named by index)."""
    (tmp_path / "three.py").write_text(
        "import torchvision\n"
        "def build():\n"
        "    net = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(\n"
        "        weights=None, weights_backbone=None, num_classes=3)\n"
        "    net.labels = ['background', 'cat', 'dog', 'x', 'y']\n"
        "    return net\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"three:build sets 5 labels on its network, which gives 3 scores"):
        Engine(EngineConfig(model="three:build", device="cpu"))
    labels = tmp_path / "seven.txt"
    labels.write_text("\n".join("abcdefg"))
    with pytest.raises(ConfigError, match=r"seven.txt names 7 classes, but ssdlite320_mobilenet_v3_large gives 91"):
        Engine(EngineConfig(model="ssdlite320_mobilenet_v3_large", weights="none", device="cpu", labels=str(labels)))
    labels.write_text("\n".join(f"c{i}" for i in range(91)))
    assert Engine(EngineConfig(model="ssdlite320_mobilenet_v3_large", weights="none", device="cpu",
                               labels=str(labels))).loaded.labels[1] == "c1"
