"""The worker's parts without a window: the rate meter (injected clock), the typed commands, the
settings store and the shortcut table."""

from __future__ import annotations

from pathlib import Path

import pytest

from eigencam_live.engine import EngineConfig
from eigencam_live.errors import ConfigError
from eigencam_live.render import RenderConfig
from ui import commands as cmd
from ui import settings as remembered
from ui.rates import RateMeter
from ui.shortcuts import SHORTCUTS, shortcut


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- rate meter ----------------------------------------------------------------------------------
def test_rate_counts_events_per_second_over_the_window():
    clock = Clock()
    meter = RateMeter(window=2.0, clock=clock)
    assert meter.rate() == 0.0 and meter.newest is None
    for _ in range(11):  # 10 intervals of 0.1 s: 10 per second
        meter.tick()
        clock.t += 0.1
    assert meter.rate() == pytest.approx(10.0)
    assert meter.newest == pytest.approx(101.0)
    clock.t += 1.5  # the window ends now: the first events drop out
    assert meter.rate() == pytest.approx(10.0)  # still two or more in the last 2 s, same spacing
    clock.t += 10.0
    assert meter.rate() == 0.0  # nothing in the last two seconds


def test_a_rate_slower_than_one_event_a_window_is_read_from_the_last_two_until_they_stop():
    """A network taking 2.3 s a frame showed 'processing 0.0 fps' (no two frames in 2 s), and a live
    capture read once a frame 'capture 0.0 fps' although its source gave 30."""
    clock = Clock()
    meter, capture = RateMeter(window=2.0, clock=clock), RateMeter(window=2.0, clock=clock)
    for i in range(4):
        meter.tick()
        capture.tick(69 * i)  # frame indices of a 30 fps source, one kept every 2.3 s
        clock.t += 2.3
    clock.t -= 1.0  # 1.3 s after the last frame
    assert meter.rate() == pytest.approx(1 / 2.3) and capture.rate() == pytest.approx(30.0)
    clock.t += 3.0  # 4.3 s without a frame: not yet twice the interval
    assert meter.rate() == pytest.approx(1 / 2.3)
    clock.t += 0.4  # 4.7 s: stalled
    assert meter.rate() == 0.0 and capture.rate() == 0.0


def test_rate_counts_units_when_events_carry_a_count():
    """A capture that dropped frames: indices 0, 3, 6, ... every 0.1 s is a 30 fps source."""
    clock = Clock()
    meter = RateMeter(clock=clock)
    for i in range(0, 30, 3):
        meter.tick(i, t=clock.t)
        clock.t += 0.1
    assert meter.rate(now=meter.newest) == pytest.approx(30.0)
    meter.tick(27, t=clock.t)  # the same frame again (re-processed while paused): not an event
    assert meter.rate(now=meter.newest) == pytest.approx(30.0)
    meter.tick(5, t=clock.t)  # a seek back starts a new measurement
    assert meter.rate(now=clock.t) == 0.0
    meter.tick(6, t=clock.t + 0.5)
    assert meter.rate(now=clock.t + 0.5) == pytest.approx(2.0)
    meter.clear()
    assert meter.rate() == 0.0


def test_a_live_rate_is_never_faster_than_the_frames_timestamps():
    """A stream trial: the decoder's burst on connecting (frames it buffered) read 270 to 470 fps
    for a 12.5 fps stream; and a network slower than the stream is read from the arrivals."""
    clock = Clock()
    meter = RateMeter(window=2.0, clock=clock)
    for i in range(10):  # ten frames, 80 ms apart on the stream's clock, arrive within 9 ms
        meter.tick(i, t=clock.t + 0.001 * i, stamp=0.08 * i)
    assert meter.rate(now=meter.newest) == pytest.approx(12.5)
    for i in range(10, 20):  # then one every 80 ms
        meter.tick(i, t=clock.t + 0.08 * (i - 9), stamp=0.08 * i)
    assert meter.rate(now=meter.newest) == pytest.approx(12.5)
    slow = RateMeter(window=2.0, clock=clock)
    for i in range(10):  # a 12.5 fps stream over a network that delivers 8 a second
        slow.tick(i, t=clock.t + 0.125 * i, stamp=0.08 * i)
    assert slow.rate(now=slow.newest) == pytest.approx(8.0)
    assert meter.rate(now=meter.newest) == pytest.approx(12.5)  # the two meters are separate


def test_rate_with_events_at_one_instant_is_zero_not_a_division_error():
    meter = RateMeter(clock=Clock())
    meter.tick()
    meter.tick()
    assert meter.rate() == 0.0
    with pytest.raises(ValueError, match="window"):
        RateMeter(window=0)


# -- typed commands ------------------------------------------------------------------------------
def test_commands_check_their_fields_where_they_are_made():
    assert cmd.Step(-1).delta == -1 and cmd.Seek(0).index == 0
    assert cmd.StartRecording("a/b.mp4").path == Path("a/b.mp4")
    assert cmd.Reconfigure({"layer": "features.6"}).changes == {"layer": "features.6"}
    with pytest.raises(ConfigError, match="unknown engine setting.*colour"):
        cmd.Reconfigure({"colour": "red"})
    with pytest.raises(TypeError, match="delta"):
        cmd.Step(1.5)
    with pytest.raises(ValueError, match="non-zero"):
        cmd.Step(0)
    with pytest.raises(ValueError, match=">= 0"):
        cmd.Seek(-3)
    with pytest.raises(TypeError, match="RenderConfig"):
        cmd.SetRender({"view": "heatmap"})
    with pytest.raises(TypeError, match="bool"):
        cmd.SetPaused(1)
    with pytest.raises(TypeError, match="spec"):
        cmd.OpenSource(None)
    assert cmd.SetPaused(True) == cmd.SetPaused(True)  # messages compare by value
    assert cmd.Compare(layers=("layer1", "layer4")).layers == ("layer1", "layer4") and cmd.Compare().layers == ()
    with pytest.raises(TypeError, match="tuple of layer names"):
        cmd.Compare(layers=["layer1", "layer4"])
    with pytest.raises(TypeError, match="tuple of layer names"):
        cmd.Compare(layers=("layer1", ""))
    with pytest.raises(ValueError, match="2 to 8 layers. Got 1"):
        cmd.Compare(layers=("layer4",))


def test_every_command_has_exactly_one_handler_in_the_loop():
    from ui.frame_loop import FrameLoop

    class Out:
        def __getattr__(self, name):
            raise AssertionError(f"nothing is emitted before the loop runs ({name})")

    loop = FrameLoop(EngineConfig(weights="none"), RenderConfig(), Out())
    assert set(loop.handlers) == set(cmd.Command.__args__)
    loop.put(cmd.Step(1))
    assert loop.commands.get_nowait() == cmd.Step(1)
    with pytest.raises(TypeError, match="not a pipeline command"):
        loop.put(("step", 1))


# -- settings ------------------------------------------------------------------------------------
class DictStore(dict):
    """Stands in for QSettings in an INI file: everything comes back as a string."""

    def value(self, key):
        return None if key not in self else str(self[key])

    def setValue(self, key, value):  # noqa: N802
        self[key] = value

    def sync(self):
        self["synced"] = True


def test_settings_round_trip_through_one_key_list():
    store = DictStore()
    engine = EngineConfig(model="resnet18", weights="none", layer="layer3", component=2, method="exact",
                          short_side=160, smoothing=0.25)
    render = RenderConfig(view="side-by-side", alpha=0.7, colormap="viridis")
    remembered.save(store, engine, render, 0, geometry=b"geom")
    assert store["synced"] and store["window/geometry"] == b"geom"
    assert {k.split("/", 1)[1] for k in store if k.startswith("engine/")} == set(remembered.ENGINE_KEYS)
    assert {k.split("/", 1)[1] for k in store if k.startswith("render/")} == set(remembered.RENDER_KEYS)
    loaded_engine, loaded_render = remembered.load_configs(store)
    assert loaded_engine == engine and loaded_render == render
    assert remembered.load_source(store) == "0"
    remembered.save(store, EngineConfig(weights="none"), render, "demo")  # layer None is saved as ""
    assert remembered.load_configs(store)[0].layer is None


def test_a_bad_remembered_value_keeps_the_default():
    store = DictStore({"engine/component": "many", "engine/model": "nope", "render/alpha": "7",
                       "render/colormap": "inferno", "engine/smoothing": "0.5"})
    engine, render = remembered.load_configs(store)
    assert (engine.component, engine.model, engine.smoothing) == (1, EngineConfig().model, 0.5)
    assert (render.alpha, render.colormap) == (RenderConfig().alpha, "inferno")
    assert remembered.load_source(DictStore()) is None and remembered.load_geometry(DictStore()) is None


# -- shortcut table ------------------------------------------------------------------------------
def test_shortcut_table_labels():
    assert shortcut("help").label == "H or ?"
    assert shortcut("step").label == "→" and shortcut("back").button_text() == "◀ Back  (←)"
    assert shortcut("pause").button_text("Resume") == "Resume  (Space)"
    assert shortcut("drop").label == "drop a file" and shortcut("drop").run is None
    names = [row.name for row in SHORTCUTS]
    assert len(names) == len(set(names))
    keys = [k for row in SHORTCUTS for k in row.keys]
    assert len(keys) == len(set(keys)), "a key bound twice"
    with pytest.raises(KeyError, match="known"):
        shortcut("nope")


def test_another_model_starts_with_weights_that_fit_it(tmp_path):
    """Random weights chosen for a detector were carried to a trained factory typed next, which then
    ran untrained; a state_dict file was carried to models it does not fit. A snapshot's JSON said
    'imagenet' for a factory's own weights."""
    from ui.controls import weights_name
    from ui.settings import weights_for

    assert weights_for("examples.efficientnet_lite0:build", "none") == "imagenet"  # as built
    assert weights_for("net.onnx", "none") == "imagenet"
    assert weights_for("resnet18", "none") == "none" and weights_for("timm:resnet18", "none") == "none"
    assert weights_for("resnet50", "/tmp/resnet18.pth") == "imagenet"
    assert [weights_name(m, "imagenet") for m in ("mynet:build", "net.onnx", "fasterrcnn_resnet50_fpn", "resnet18")] == \
        ["as built", "as built", "COCO", "imagenet"]
    assert weights_name("mynet:build", "none") == "none"
    # on the command line too: random weights remembered from a zoo model are not an ONNX file's (refused)
    from eigencam_live.options import typed_options as _typed
    from ui.app import build_parser, configs_from

    store = {"engine/model": "resnet18", "engine/weights": "none"}
    settings = type("Store", (), {"value": lambda _s, k: store.get(k), "setValue": store.__setitem__,
                                  "sync": lambda _s: None})()
    parser = build_parser()
    for argv, weights in ((["--model", "net.onnx"], "imagenet"), (["--model", "resnet50"], "none"),
                          (["--model", "mynet:build", "--weights", "none"], "none")):
        engine, _ = configs_from(parser.parse_args(argv), _typed(parser, argv), settings)
        assert (engine.model, engine.weights) == (argv[1], weights)
    state = tmp_path / "mine.pth"  # the model remembered, typed again: its own state_dict stays
    state.write_bytes(b"")
    store["engine/weights"] = str(state)
    engine, _ = configs_from(parser.parse_args(["--model", "resnet18"]), {"model"}, settings)
    assert engine.weights == str(state)
    # weights typed for a remembered ONNX file (its own weights): refused as --model net.onnx --weights is
    from eigencam_live.errors import ConfigError

    store.update({"engine/model": "net.onnx", "engine/weights": "imagenet"})
    with pytest.raises(ConfigError, match="remembered from the last run, is the ONNX file net.onnx"):
        configs_from(parser.parse_args(["--weights", "imagenet"]), {"weights"}, settings)
    engine, _ = configs_from(parser.parse_args(["--model", "resnet18", "--weights", "none"]), {"model", "weights"},
                             settings)
    assert (engine.model, engine.weights) == ("resnet18", "none")


def test_the_closed_layer_box_keeps_the_shape_in_sight_and_shortens_the_name(qtbot):
    """'★ /layer4/layer4.1/relu_1/Relu_output_0  5' (an ONNX node) and '   ★ encoder.layers.encoder_la':
    the name pushed the shape out of the closed box, after the tree's indent."""
    from PyQt5.QtCore import Qt

    from ui.widgets import LayerCombo

    box = LayerCombo()
    qtbot.addWidget(box)
    name = "/layer4/layer4.1/relu_1/Relu_output_0"
    box.add_layer(f"      ★ {name}   512×7×12  Relu", name, f"★ {name}", "512×7×12", "Relu")
    fm = box.fontMetrics()
    wide = box.closed_text(2000)
    assert wide == f"★ {name}   512×7×12  Relu"
    narrow = box.closed_text(fm.horizontalAdvance("★ /layer4/…Relu_output_0   512×7×12  Relu"))
    # an ONNX node's name cut: its repeats and its '_output_0' go first (a trial: every layer read
    # '…dSwish_output_0'), the star kept
    assert narrow == "★ layer4.1/relu_1/Relu   512×7×12  Relu"
    tight = box.closed_text(fm.horizontalAdvance("★ /layer…put_0   512×7×12"))
    assert tight.endswith("   512×7×12") and "…" in tight  # the type gives way before the name goes under 10 characters
    assert fm.horizontalAdvance(tight) <= fm.horizontalAdvance("★ /layer…put_0   512×7×12")
    deep = "/features/features.12/block/block.3/HardSwish_output_0"
    box.add_layer(f"★ {deep}   576×7×12  HardSwish", deep, f"★ {deep}", "576×7×12", "HardSwish")
    box.setCurrentIndex(1)
    cut = box.closed_text(fm.horizontalAdvance("★ …12/block.3/HardSwish   576×7×12  HardSwish") + 4)
    assert cut.startswith("★ …") and cut.endswith("12/block.3/HardSwish   576×7×12  HardSwish")
    from ui.widgets import elide_name  # tiles side by side: every node name shortened alike, fitting or not

    assert elide_name(fm, deep, 2000) == deep and elide_name(fm, deep, 2000, compact=True) == "features.12/block.3/HardSwish"
    assert elide_name(fm, "layer4", 2000, compact=True) == "layer4"
    # shortened at its front: the end names the block (a trial: '_block…t_conv' for
    # _blocks.15._project_conv lost the block's number)
    box.add_layer("_blocks.15._project_conv   320×7×12  Conv2d", "_blocks.15._project_conv", "_blocks.15._project_conv",
                  "320×7×12", "Conv2d")
    box.setCurrentIndex(2)
    shown = box.closed_text(fm.horizontalAdvance("…15._project_conv   320×7×12") + 8)
    assert shown.startswith("…") and shown.endswith("15._project_conv   320×7×12")
    # its tooltip names the layer in use in full (it gave the help alone), the help below
    box.setItemData(2, "_blocks.15._project_conv: Conv2d, 320×7×12", Qt.ToolTipRole)
    box.setToolTip("The layer whose activations...")
    assert box.toolTip() == "In use: _blocks.15._project_conv: Conv2d, 320×7×12\n\nThe layer whose activations..."
    box.setCurrentIndex(0)
    assert box.toolTip() == "The layer whose activations..."  # (that item has no tooltip of its own)
    box.show()
    box.resize(180, box.sizeHint().height())
    box.repaint()  # paints through closed_text without error


# (a review: "2.5" or "1e3" in a whole-number box reached fixup as a float, and Qt aborted the app)
@pytest.mark.parametrize(("typed", "value"), [("1200", 1024), ("32", 64), ("500", 500), ("x", 224), ("2.5", 64),
                                              ("100.5", 1005), ("1e3", 64)])  # (the point refused)
def test_a_number_typed_beyond_a_boxs_range_is_taken_as_its_nearest_end(qtbot, typed, value):
    """A trial: typing 1200 in the short side (up to 1024) refused the last digit and applied 128
    with nothing said; 5000 as the component became 500."""
    from PyQt5.QtCore import Qt

    from ui.focus import DoubleSpinBox, SpinBox

    box = SpinBox()
    qtbot.addWidget(box)
    box.setRange(64, 1024)
    box.setSuffix(" px")
    box.setKeyboardTracking(False)  # as the panel's: applied on Enter
    box.setValue(224)
    applied = []
    box.valueChanged.connect(applied.append)
    box.selectAll()
    qtbot.keyClicks(box, typed)
    qtbot.keyClick(box, Qt.Key_Return)
    assert box.value() == value and applied == ([] if value == 224 else [value])
    smooth = DoubleSpinBox()
    qtbot.addWidget(smooth)
    smooth.setRange(0.0, 0.95)
    smooth.setKeyboardTracking(False)
    smooth.selectAll()
    qtbot.keyClicks(smooth, "0.99")
    qtbot.keyClick(smooth, Qt.Key_Return)
    assert smooth.value() == 0.95


def test_the_busy_text_counts_the_seconds_of_a_long_wait(qtbot, monkeypatch):
    """An export of a large network said 'Preparing vit_l_16…' for half a minute with no sign of life."""
    from types import SimpleNamespace

    import ui.frame_view as widgets
    from ui.frame_view import FrameView

    clock = Clock(50.0)
    monkeypatch.setattr(widgets, "time", SimpleNamespace(monotonic=clock))  # the widget's clock alone
    view = FrameView()
    qtbot.addWidget(view)
    view.set_busy("Preparing vit_l_16 for onnxruntime (once, cached)…")
    clock.t += 1.5
    assert view.busy_line() == "Preparing vit_l_16 for onnxruntime (once, cached)…"
    clock.t += 11.0
    assert view.busy_line().endswith("\n12 s") and view._busy_clock.isActive()
    view.set_busy("Preparing vit_l_16 for onnxruntime (once, cached)…")  # the same wait: counted on
    assert view.busy_line().endswith("\n12 s")
    view.set_busy("Loading resnet18…")  # another: from 0
    assert view.busy_line() == "Loading resnet18…"
    view.set_busy("")
    assert view.busy_line() == "" and not view._busy_clock.isActive()


@pytest.mark.parametrize(("shape", "aspect", "view_size"), [((90, 160, 3), 1.0, (480, 300)),  # grows, bars left and right
                                                              ((540, 960, 3), 1.0, (480, 300)),  # halved
                                                              ((560, 1000, 3), 1.0, (480, 300)),  # shrinks a little
                                                              ((64, 96, 3), 4 / 3, (512, 300))])  # anamorphic: 2:1 shown
def test_the_view_paints_the_picture_scaled_into_its_place(qtbot, shape, aspect, view_size):
    """The picture is scaled by OpenCV (off the GIL) and blitted: what the window shows is that
    image, at the target rectangle, on the dark background; made once per picture and size."""
    import cv2
    import numpy as np
    from PyQt5.QtGui import QImage

    from ui.frame_view import FrameView, image_array

    view = FrameView()
    qtbot.addWidget(view)
    view.setFixedSize(*view_size)
    view.aspect = aspect
    picture = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    view.set_image(picture)
    grabbed = view.grab().toImage().convertToFormat(QImage.Format_RGB32)
    shown = image_array(grabbed)[:, :, :3]  # a view: grabbed is held
    assert shown.shape[:2] == (view_size[1], view_size[0])
    t = view.target_rect()
    x, y, w, h = round(t.x()), round(t.y()), round(t.width()), round(t.height())
    assert w / h == pytest.approx(shape[1] * aspect / shape[0], rel=0.01) and (w == view_size[0] or h == view_size[1])
    want = cv2.resize(cv2.pyrDown(picture) if shape[1] >= 2 * w else picture, (w, h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(shown[y : y + h, x : x + w], want)
    outside = np.ones(shown.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert outside.any() and (shown[outside] == (28, 25, 24)).all()  # the background, BGR
    made = view._scaled[1]
    view.grab()
    assert view._scaled[1] is made  # the same picture and size: not scaled again
    view.set_image(picture.copy())
    view.grab()
    assert view._scaled[1] is not made


def test_a_large_picture_is_shrunk_for_the_screen_without_aliasing():
    """Fine detail (1-pixel stripes) shrunk 5x into a view becomes its average grey, as area
    averaging gives; plain bilinear would keep stripes of full contrast (moire)."""
    import cv2
    import numpy as np

    from ui.frame_view import fit

    stripes = np.zeros((1080, 1920, 3), np.uint8)
    stripes[:, ::2] = 255
    small = fit(stripes, (384, 216))
    assert small.shape == (216, 384, 3)
    assert np.abs(small[4:-4, 4:-4].astype(int) - 128).max() <= 2
    aliased = cv2.resize(stripes, (384, 216), interpolation=cv2.INTER_LINEAR)
    assert np.ptp(aliased) > 200  # what the halving steps prevent
    same = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert fit(same, (4, 2)) is same


def test_a_pick_in_the_device_row_brings_what_it_needs_along():
    """A trial: onnxruntime picked while the precision was bf16 was refused with a banner (and the box
    went back to torch): ONNX Runtime runs on the CPU in fp32, so the precision follows the pick."""
    from eigencam_live.engine import EngineConfig
    from ui.controls import device_row

    bf16 = EngineConfig(backend="torch", precision="bf16")
    assert device_row(bf16, False, backend="onnxruntime") == {"backend": "onnxruntime", "precision": "auto"}
    ort = EngineConfig(backend="onnxruntime")
    assert device_row(ort, False, precision="bf16") == {"precision": "bf16", "backend": "auto"}
    assert device_row(ort, False, device="cuda") == {"device": "cuda", "backend": "auto"}
    assert device_row(EngineConfig(device="auto"), True, backend="onnxruntime") == {"backend": "onnxruntime",
                                                                                   "device": "cpu"}
    # what needs nothing else is sent as it is
    assert device_row(EngineConfig(device="auto"), False, backend="onnxruntime") == {"backend": "onnxruntime"}
    assert device_row(ort, False, precision="fp32") == {"precision": "fp32"}
    assert device_row(bf16, False, backend="torch") == {"backend": "torch"}
    for picked in (device_row(bf16, False, backend="onnxruntime"), device_row(ort, True, device="cuda")):
        EngineConfig(**{**vars(EngineConfig()), **picked})  # a valid config


def test_a_rate_not_measured_yet_is_a_dash_in_the_status_line(qapp):
    """A trial: after a new backend or input size the line read "capture 0.0 fps · processing 0.0
    fps", as if the source had stalled; the rates start over and need two frames."""
    from types import SimpleNamespace

    from PyQt5.QtWidgets import QLabel

    from ui.status import StatusReports

    clock = Clock()
    display = RateMeter(window=2.0, clock=clock)
    pipeline = SimpleNamespace(capture_fps=0.0, process_rate=RateMeter(window=2.0, clock=clock), process_ms=93.0,
                               dropped=0, link_status="")
    window = SimpleNamespace(pipeline=pipeline, paused=False, latencies=[], display_rate=display, stats_label=QLabel())
    window.stats_label.resize(2000, 20)
    StatusReports._update_stats(window)
    assert window.stats_label.text().startswith("capture — fps  ·  processing — fps (93 ms)  ·  display — fps")
    for _ in range(3):
        display.tick()
        clock.t += 0.1
    pipeline.capture_fps = 30.0
    StatusReports._update_stats(window)
    assert window.stats_label.text().startswith("capture 30.0 fps  ·  processing — fps (93 ms)  ·  display 10.0 fps")
    # a network taking seconds a frame: its rate in two figures, its time in seconds (a trial read
    # "processing 0.0 fps (16602 ms)" for a detector at 16.6 s a frame)
    for _ in range(3):
        pipeline.process_rate.tick()
        clock.t += 16.6
    pipeline.process_ms = 16602.0
    pipeline.process_rate.window = 40.0
    StatusReports._update_stats(window)
    assert "processing 0.06 fps (16.6 s)" in window.stats_label.text(), window.stats_label.text()
    pipeline.process_ms = 0.0  # none timed since the rates started over (a new model): no "(0 ms)"
    StatusReports._update_stats(window)
    assert "processing 0.06 fps  ·  display" in window.stats_label.text(), window.stats_label.text()
