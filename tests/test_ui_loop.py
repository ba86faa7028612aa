"""ui.frame_loop without Qt: the engine draws the picture that is shown and recorded, and a layer or
component that cannot give a map is refused from the model's shapes, with no trial frame."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.render import RenderConfig
from eigencam_live.video import Frame
from ui import commands as cmd
from ui.frame_loop import FrameLoop

FAST = EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu")


class Signal:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def emit(self, *args) -> None:
        self.calls.append(args)


class Out:
    """Records what the loop would signal to the window."""

    def __getattr__(self, name: str) -> Signal:
        signal = Signal()
        setattr(self, name, signal)
        return signal

    def errors(self) -> list[str]:
        return [args[0] for args in self.error.calls]

    def refused(self) -> list[str]:
        """The settings refused, and why."""
        return [args[0] for args in self.setting_failed.calls]


def frame(index: int = 0, size: tuple[int, int] = (160, 120)) -> Frame:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Frame(image=image, index=index, pts=index / 30.0, captured=float(index))


@pytest.fixture(scope="module")
def engine():
    import torch

    torch.manual_seed(0)
    return Engine(FAST)


def test_the_shown_and_recorded_image_is_the_engines_picture(tmp_path):
    """The loop asks the engine for the picture (one route: drawn on the GPU under CUDA) and never
    draws it itself."""
    seen = []
    picture = np.full((120, 160, 3), 77, np.uint8)

    class FakeEngine:
        backend = SimpleNamespace(preparing=False, warning=None, running="torch")
        preparing = lambda self, frame_hw=None: self.backend.preparing  # noqa: E731 (as Engine.preparing)
        loaded = SimpleNamespace(spec=SimpleNamespace(fixed_input=None), note=None)

        def input_size(self, frame_hw=None):  # the size the layer list was made for: never changes here
            return None

        def process(self, image, render=None):
            seen.append(render)
            return [SimpleNamespace(picture=picture, heatmap=np.zeros(image.shape[:2], np.float32))]

    out = Out()
    look = RenderConfig(view="heatmap", colormap="viridis")
    loop = FrameLoop(FAST, look, out)
    loop.engine = FakeEngine()
    loop.recorder.start(tmp_path / "r.mp4", fps=30.0)
    loop._process(frame(0), record=True)
    loop._process(frame(1), record=True)
    packet = loop.mailbox.take()
    assert packet.image is picture and packet.frame.index == 1
    assert seen == [look, look]
    assert loop.recorder.frames_written == 2
    assert len(out.frame_ready.calls) == 1, "newest only: one notification until the GUI takes"
    assert loop.frames_processed == 2 and not out.errors()
    loop._stop_recording()
    assert (tmp_path / "r.mp4").is_file() and out.recording_changed.calls == [(False, str(tmp_path / "r.mp4"))]


def test_a_change_of_look_while_paused_redraws_the_frame_on_screen():
    calls = []

    class FakeEngine:
        backend = SimpleNamespace(preparing=False, warning=None, running="torch")
        preparing = lambda self, frame_hw=None: self.backend.preparing  # noqa: E731 (as Engine.preparing)
        loaded = SimpleNamespace(spec=SimpleNamespace(fixed_input=None), note=None)

        def input_size(self, frame_hw=None):  # the size the layer list was made for: never changes here
            return None

        def process(self, image, render=None):
            calls.append(render)
            return [SimpleNamespace(picture=image, heatmap=None)]

    loop = FrameLoop(FAST, RenderConfig(), Out())
    loop.engine = FakeEngine()
    loop._paused = True
    loop._process(frame(3), record=False)
    loop.put(cmd.SetRender(RenderConfig(view="original")))
    loop._drain_commands()
    assert [c.view for c in calls] == ["overlay", "original"]
    assert loop.mailbox.take().frame.index == 3
    loop._drain_commands()  # nothing new: no redraw
    assert len(calls) == 2


def _counting(engine: Engine, monkeypatch) -> list:
    calls = []
    real = engine.process

    def process(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "process", process)
    return calls


def test_a_layer_without_a_map_is_refused_without_a_trial_frame(engine, monkeypatch):
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out)
    loop.engine = engine
    loop._process(frame(0), record=False)  # the engine has seen the frame size
    calls = _counting(engine, monkeypatch)
    loop._reconfigure(cmd.Reconfigure({"layer": "classifier.0"}))  # a (B, 1024) vector
    assert engine.layer == "features" and engine.config.layer is None
    assert out.refused() and out.refused()[-1].endswith("back to layer features"), out.refused()
    assert calls == [], "refused from the shapes the model reports, not by running a frame"
    assert out.engine_changed.calls[-1][0].layer == "features", "the window resyncs its controls"
    assert not loop._redraw


def test_a_component_beyond_the_rank_is_refused_without_a_trial_frame(engine, monkeypatch):
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out)
    loop.engine = engine
    loop._process(frame(0), record=False)  # 160x120 at short side 64: a 2x3 map, rank 6
    calls = _counting(engine, monkeypatch)
    loop._reconfigure(cmd.Reconfigure({"component": 7}))
    assert engine.config.component == 1
    assert "rank" in out.refused()[-1] and out.refused()[-1].endswith("setting not applied")
    assert calls == [] and not out.setting_applied.calls
    loop._reconfigure(cmd.Reconfigure({"component": 6}))  # within the rank: applied, then redrawn
    assert engine.config.component == 6 and loop._redraw and len(out.setting_applied.calls) == 1
    engine.reconfigure(component=1)


def test_a_component_beyond_a_maps_rank_gives_way_unless_the_command_line_named_it():
    """The rank is known on a frame only (it depends on the aspect). A trial: --component 90, or a
    remembered one, on a smaller map showed no frame at all ("Preparing" for good); a size, a layer
    or a model whose map is too small for the component in use was refused for it."""
    from dataclasses import replace

    import torch

    torch.manual_seed(0)
    high = replace(FAST, component=9)  # 160x120 at short side 64: a 2x3 map, rank 6
    out = Out()
    loop = FrameLoop(high, RenderConfig(), out, required=frozenset({"component"}))  # typed: must be had
    loop.engine = Engine(high)
    loop._process(frame(0), record=False)
    assert "beyond the rank 6" in out.fatal.calls[0][0] and loop.stop_event.is_set() and loop.frames_processed == 0
    out = Out()
    loop = FrameLoop(high, RenderConfig(), out)  # remembered: it gives way, said
    loop.engine = engine = Engine(high)
    loop._process(frame(0), record=False)
    assert loop.frames_processed == 1 and engine.config.component == 1 and not out.fatal.calls
    assert out.warning.calls[-1][0].endswith("component 1 is shown instead") and "rank 6" in out.warning.calls[-1][0]
    assert out.engine_changed.calls[-1][0].config.component == 1  # the window's controls follow
    loop._reconfigure(cmd.Reconfigure({"short_side": 96}))  # a 3x4 map, rank 12
    loop._reconfigure(cmd.Reconfigure({"component": 10}))
    assert (engine.config.short_side, engine.config.component) == (96, 10)
    loop._reconfigure(cmd.Reconfigure({"short_side": 64}))  # the size asked for is had, the component gives way
    assert (engine.config.short_side, engine.config.component) == (64, 1) and not out.refused()
    assert "beyond the rank 6" in out.warning.calls[-1][0] and out.engine_changed.calls[-1][0].config.component == 1


def test_a_network_held_to_one_size_says_it_stretches_a_frame_of_another_aspect(tmp_path):
    """An ONNX file exported for 64x64 took 4:3 frames squeezed, without a word (the short side
    box read 320 beside a 7x7 map); it is said once for each frame size."""
    import warnings

    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=8, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 64, 64),), str(tmp_path / "fixed.onnx"), opset_version=17,
                          dynamo=False)
    config = EngineConfig(model=str(tmp_path / "fixed.onnx"))
    out = Out()
    loop = FrameLoop(config, RenderConfig(), out)
    loop.engine = Engine(config)
    for i, size in enumerate([(96, 96), (160, 120), (160, 120), (96, 96), (160, 120)]):
        loop._process(frame(i, size), record=False)
    said = [args[0] for args in out.warning.calls]
    stretched = "fixed.onnx takes 64x64 input only: 160x120 frames are stretched to it (their aspect is not kept)"
    assert said == [stretched]
    assert loop.frames_processed == 5
    # a load that fails: its error is what stays in view (a review: the stretch, said again, covered it)
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    loop._reconfigure(cmd.Reconfigure({"model": str(tmp_path / "bad.onnx")}))
    loop._process(frame(5, (160, 120)), record=False)
    assert [args[0] for args in out.warning.calls] == [stretched] and "bad.onnx" in out.setting_failed.calls[-1][0]
    # loaded again (the window takes what was said of a model away while one loads): said again
    loop._reconfigure(cmd.Reconfigure({"model": str(tmp_path / "fixed.onnx")}))
    loop._process(frame(6, (160, 120)), record=False)
    assert [args[0] for args in out.warning.calls] == [stretched, stretched]


def test_a_traced_copy_for_torch_is_said_while_it_is_built():
    """On torch the first frame at a size builds the network's traced copy (it runs the network
    about five times): in bf16 on a CPU without its kernels the picture froze for 15 s without a
    word. The window now hears "preparing…" for that frame, again for a new size, a new layer and
    a new precision, and not for the frames after."""
    config = replace(FAST, backend="torch")
    loop = FrameLoop(config, RenderConfig(), Out())
    loop.engine = engine = Engine(config)
    said = "preparing mobilenet_v3_small for torch (a traced copy for this input, layer and precision)…"
    for change, size in (({}, (160, 120)), ({}, (120, 160)), ({"short_side": 96}, (120, 160)),
                         ({"layer": "features.11"}, (120, 160)), ({"precision": "bf16"}, (120, 160)),
                         ({"precision": "fp32"}, (120, 160))):  # a new frame size (a review), setting...
        engine.reconfigure(**change)
        assert engine.preparing(size[::-1])  # known before the frame
        loop._process(frame(0, size), record=False)
        assert not engine.preparing(size[::-1]) and engine.traced
        loop._process(frame(1, size), record=False)
        assert [c[0] for c in loop.out.busy.calls] == [said, ""]
        loop.out.busy.calls.clear()
    engine.reconfigure(optimize=False)  # nothing to build: nothing said
    loop._process(frame(2), record=False)
    assert not loop.out.busy.calls and not engine.traced


def test_the_first_frame_on_onnxruntime_says_it_is_preparing_then_what_runs(monkeypatch):
    """The export takes seconds: the window hears "preparing…" before it and what runs after it."""
    from eigencam_live.backends.export_cache import cache_dir

    loop = FrameLoop(FAST, RenderConfig(), Out())
    loop.engine = Engine(FAST, model=None)
    assert loop.engine.backend.name == "onnxruntime" and loop.engine.backend.preparing
    for old in cache_dir().glob("mobilenet_v3_small-*.onnx"):  # (another test's export)
        old.unlink()
    assert not loop.engine.backend.exported_before
    loop._process(frame(0), record=False)
    assert [c[0] for c in loop.out.busy.calls] == ["preparing mobilenet_v3_small for onnxruntime (once, cached)…", ""]
    status = loop.out.engine_changed.calls[-1][0]
    assert status.backend == "onnxruntime" and not loop.engine.backend.preparing
    loop._process(frame(1), record=False)
    assert len(loop.out.busy.calls) == 2  # only the first frame prepares
    # started again: the export is loaded from the cache, and said so (a trial: "once" said again)
    again = FrameLoop(FAST, RenderConfig(), Out())
    again.engine = Engine(FAST, model=None)
    again._process(frame(0), record=False)
    assert [c[0] for c in again.out.busy.calls] == ["preparing mobilenet_v3_small for onnxruntime from its cached export…", ""]
    # a new input size is checked against torch once (a trial: resnet50 at 640 stood still 7-16 s, unsaid)
    again.out.busy.calls.clear()
    again.engine.reconfigure(short_side=96)
    assert again.engine.preparing((120, 160))
    again._process(frame(2), record=False)
    again._process(frame(3), record=False)
    assert [c[0] for c in again.out.busy.calls] == [
        "checking mobilenet_v3_small on onnxruntime against torch at 128x96 (once for this input size)…", ""]
    assert not again.engine.preparing((120, 160))


def test_frames_a_live_source_delivers_while_the_network_is_prepared_are_not_counted_dropped(monkeypatch):
    """The first frame through ONNX Runtime exports the network (seconds): a camera meanwhile
    overtakes frames, which said 'dropped 60' of a model that keeps up once it runs."""
    from ui import frame_loop
    from ui.playback import Playback

    class Counting(Playback):
        count = 0

        @property
        def dropped(self) -> int:
            return self.count

    picture = np.zeros((120, 160, 3), np.uint8)
    playback = Counting()

    class PreparingEngine:
        backend = SimpleNamespace(preparing=True, warning=None, running="onnxruntime", name="onnxruntime")
        preparing = lambda self, frame_hw=None: self.backend.preparing  # noqa: E731 (as Engine.preparing)
        config = FAST
        loaded = SimpleNamespace(spec=SimpleNamespace(fixed_input=None), note=None)

        def input_size(self, frame_hw=None):
            return None

        def process(self, image, render=None):
            if self.backend.preparing:
                playback.count += 45  # overtaken while the export ran
            return [SimpleNamespace(picture=picture, heatmap=None)]

    monkeypatch.setattr(frame_loop.EngineStatus, "of", classmethod(lambda cls, e: SimpleNamespace()))
    loop = FrameLoop(FAST, RenderConfig(), Out())
    loop.playback = playback
    engine = PreparingEngine()
    loop.engine = engine
    loop._process(frame(0), record=False)
    assert loop.dropped == 0
    engine.backend.preparing = False
    playback.count += 3  # dropped while it runs: counted
    loop._process(frame(1), record=False)
    assert loop.dropped == 3


def test_only_what_the_command_line_typed_must_be_had():
    """build_engine with the settings typed on the command line: a remembered part that fails
    falls back (saying why), keeping what was typed; what was typed failing is fatal."""
    from dataclasses import replace

    from ui.engine_status import build_engine

    stale = replace(FAST, layer="features.99")  # a remembered layer; --component typed
    errors, fatal = [], []
    engine = build_engine(replace(stale, component=2), lambda _m: None, errors.append, typed=frozenset({"component"}),
                          fatal=fatal.append)
    assert engine is not None and engine.layer == "features" and engine.config.component == 2
    assert engine.config.model == FAST.model and "features.99" in errors[0] and not fatal
    errors.clear()
    assert build_engine(stale, lambda _m: None, errors.append, typed=frozenset({"layer"}), fatal=fatal.append) is None
    assert "features.99" in fatal[0]


def test_a_remembered_model_that_fails_falls_back_to_the_defaults_trained_weights_included(imagenet_offline):
    """A trial: a remembered factory that no longer imports fell back to random weights, which the
    window called "on purpose" and remembered for every later run. The defaults are the app's own:
    ImageNet weights (untrained only where they cannot be had, and said so)."""
    from ui.engine_status import build_engine

    errors = []
    engine = build_engine(EngineConfig(model="nosuchmodule:build", device="cpu"), lambda _m: None, errors.append)
    assert engine is not None and "nosuchmodule" in errors[0]
    assert engine.config == EngineConfig() and engine.warning.startswith("UNTRAINED network")


def test_the_command_lines_source_is_required_until_another_is_chosen(tmp_path):
    missing = str(tmp_path / "missing.mp4")
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out, demo_size=(96, 64), required=frozenset({"source"}))
    loop.put(cmd.OpenSource(missing))
    loop._drain_commands()
    assert "missing.mp4" in out.fatal.calls[0][0] and loop.stop_event.is_set() and not loop.playback.is_open
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out, demo_size=(96, 64), required=frozenset({"source"}))
    loop.put(cmd.OpenSource(missing))
    loop.put(cmd.OpenSource("scene"))  # chosen while the first was still to open: it may fail as any
    try:
        loop._drain_commands()
        assert not out.fatal.calls and out.source_opened.calls[-1][0] == "scene"
    finally:
        loop.playback.close()


def test_a_typed_layer_with_a_stale_remembered_setting_keeps_the_remembered_model():
    """--layer layer3 typed, the remembered resnet18 on a device no longer there: the fallback
    keeps the model the layer belongs to and resets only what was not typed."""
    from dataclasses import replace

    from ui.engine_status import build_engine

    remembered = EngineConfig(model="resnet18", weights="none", short_side=64, device="cuda", layer="layer3")
    errors, fatal = [], []
    engine = build_engine(remembered, lambda _m: None, errors.append, typed=frozenset({"layer"}), fatal=fatal.append)
    if engine is not None and engine.device.type == "cuda":
        pytest.skip("a CUDA GPU is here: the remembered device is not stale")
    assert engine is not None and (engine.config.model, engine.layer) == ("resnet18", "layer3") and not fatal
    assert "cuda" in errors[0] and engine.config.device == "auto"
    assert build_engine(replace(remembered, layer="nosuch"), lambda _m: None, errors.append,
                        typed=frozenset({"layer"}), fatal=fatal.append) is None
    assert "no layer named 'nosuch' in ResNet" in fatal[0]  # said of the model the layer was typed for


class _Recording:
    """An engine that hands each frame back as its picture."""

    backend = SimpleNamespace(preparing=False, warning=None, running="torch")
    preparing = lambda self, frame_hw=None: self.backend.preparing  # noqa: E731 (as Engine.preparing)
    loaded = SimpleNamespace(spec=SimpleNamespace(fixed_input=None), note=None)  # any input size

    def input_size(self, frame_hw=None):
        return None

    def reset(self) -> None:
        pass

    def process(self, image, render=None):
        return [SimpleNamespace(picture=image, heatmap=None)]


def _folder_loop(folder) -> tuple[FrameLoop, Out]:
    """A loop on :class:`_Recording` with ``folder`` opened (a folder opens paused, on its first
    image); the caller closes ``loop.playback``."""
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out)
    loop.engine = _Recording()
    loop.put(cmd.OpenSource(str(folder)))
    return loop, out


def _stills(folder, count: int) -> None:
    """``f0.png`` ... : 32 x 24 stills, each a shade lighter than the one before."""
    import cv2

    for i in range(count):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((24, 32, 3), 25 * i, np.uint8))


def test_a_folder_of_stills_opens_paused_on_its_first_and_names_an_unreadable_one_once(tmp_path):
    """A folder flashed past at 30 fps (six photos in 0.17 s): it opens paused on its first image,
    → shows the next, and an unreadable one is said when it is skipped, once."""
    import cv2

    for i, size in enumerate([(40, 30), (20, 50), (30, 30)]):
        cv2.imwrite(str(tmp_path / f"p{i * 2}.png"), np.full((size[1], size[0], 3), 60 * i, np.uint8))
    (tmp_path / "p1.png").write_bytes(b"")
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        assert loop._paused and out.paused_changed.calls == [(True,)]
        assert loop.mailbox.take().image.shape == (30, 40, 3)
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.mailbox.take().image.shape == (50, 20, 3)  # p2, its own size; p1 skipped
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.mailbox.take().image.shape == (30, 30, 3)
        assert [args[0] for args in out.source_warning.calls] == ["skipped an unreadable image: cannot read image "
                                                                  f"{tmp_path / 'p1.png'}: the file is empty"]
        loop.put(cmd.Step(-1))  # back over the unreadable one: p2 (it came back to p2 for good)
        loop._drain_commands()
        loop.put(cmd.Step(-1))
        loop._drain_commands()
        assert loop.mailbox.take().image.shape == (30, 40, 3)
    finally:
        loop.playback.close()


def test_a_source_chosen_after_a_folder_plays_but_a_users_pause_stays(tmp_path):
    """A re-trial: the demo clip chosen while a folder was paused (a folder opens paused, on its
    first still) opened paused too. A folder's own pause, and the end of a file, are not carried
    to the next source; a pause the user asked for (Space) is, on the new source's first frame."""
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((24, 32, 3), 80, np.uint8))
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        assert loop._paused
        loop.put(cmd.OpenSource("demo"))
        loop._drain_commands()
        assert not loop._paused and out.paused_changed.calls == [(True,), (False,)]
        loop.dropped = 3  # the demo clip's (a re-trial: still said on the next source)
        loop.put(cmd.SetPaused(True))
        loop.put(cmd.OpenSource("scene"))
        loop._drain_commands()
        assert loop._paused and out.paused_changed.calls[-1] == (True,) and out.source_opened.calls[-1][0] == "scene"
        assert loop.dropped == 0
        assert loop.mailbox.take() is not None  # its first frame is shown, paused
        loop.put(cmd.OpenSource(str(tmp_path)))  # a user's pause over a folder stays the user's
        loop.put(cmd.OpenSource("demo"))
        loop._drain_commands()
        assert loop._paused
    finally:
        loop.playback.close()
    # the end of a folder (the window pauses there), then another folder, then the demo: it plays
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.playback.ended and out.source_ended.calls
        loop.put(cmd.SetPaused(True))  # as the window does at the end
        loop.put(cmd.OpenSource(str(tmp_path)))
        loop.put(cmd.OpenSource("demo"))
        loop._drain_commands()
        assert not loop._paused and out.paused_changed.calls[-1] == (False,)
    finally:
        loop.playback.close()
    # paused by the user (Space), then stepped to the end: still the user's pause, carried over
    loop, out = _folder_loop(tmp_path)
    try:
        loop.put(cmd.SetPaused(False))
        loop.put(cmd.SetPaused(True))
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.playback.ended and out.source_ended.calls
        loop.put(cmd.OpenSource("demo"))  # (the window pauses nothing at the end: it is paused)
        loop._drain_commands()
        assert loop._paused and out.paused_changed.calls[-1] == (True,)
    finally:
        loop.playback.close()


def test_the_end_of_a_source_that_plays_on_after_a_failed_choice_is_said_again(tmp_path):
    """A review: the window lets an end go once another source is chosen (the end was that of a
    source being replaced); where the choice fails to open and the ended source stays, its end
    is said again, under the new number, so the window pauses (or loops) it."""
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((24, 32, 3), 80, np.uint8))
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.playback.ended and out.source_ended.calls == [(1,)]
        loop.put(cmd.OpenSource(str(tmp_path / "missing.mp4")))
        loop._drain_commands()
        assert out.source_failed.calls and loop.sources_asked == 2
        assert out.source_ended.calls[-1] == (2,)  # the window's count: not let go
    finally:
        loop.playback.close()


def test_play_at_the_end_of_a_file_starts_it_again(tmp_path):
    """At the end of a file, play (Space) did nothing: the button toggled, no frame came."""
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((24, 32, 3), 80 * i, np.uint8))
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        loop.mailbox.take()
        for _ in range(3):  # f1, f2, then the end
            loop.put(cmd.Step(1))
            loop._drain_commands()
        assert loop.playback.ended and out.source_ended.calls
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        assert not loop.playback.ended
        assert loop._read(timeout=5).index == 0
    finally:
        loop.playback.close()


def test_a_recording_started_while_paused_begins_with_the_frame_on_screen(tmp_path):
    """R while paused, then a step: the frame on screen and the step's are written (the one on
    screen was left out: R then five steps gave five frames)."""
    import cv2

    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((24, 32, 3), 60 * i, np.uint8))
    _record_a_still_and_a_step(tmp_path, tmp_path / "r.mp4")


def test_a_step_back_while_recording_is_recorded_as_a_step_forward_is(tmp_path):
    """A GUI trial: the frame a step back (←) showed while a recording was paused was left out of
    the file, and the frame after it, recorded before, came again when play went on (140, 141,
    142, 143, 143, 144: a stutter, its sound repeated). The recording is of the pictures shown:
    the step back's frame is written as a step forward's is (a jump for the recorder, cut out)."""
    import av

    _stills(tmp_path, 6)
    loop, _ = _folder_loop(tmp_path)
    try:
        loop._drain_commands()  # a folder opens paused on its first still
        loop.put(cmd.StartRecording(tmp_path / "r.mp4"))  # f0, on screen, is written
        shown = []
        for delta in (-1, 1, 1, -1, 1, 1):  # back at the first frame: it stays, recorded once
            loop.put(cmd.Step(delta))
            loop._drain_commands()
            shown.append(loop.mailbox.take().frame.index)
        assert shown == [0, 1, 2, 1, 2, 3]
    finally:
        loop._stop_recording()
        loop.playback.close()
    with av.open(str(tmp_path / "r.mp4")) as container:
        shades = [round(float(f.to_ndarray(format="gray").mean()) / 25) for f in container.decode(video=0)]
    assert shades == [0, 1, 2, 1, 2, 3]


def _record_a_still_and_a_step(folder, path, opened=None) -> None:
    """Open ``folder`` (paused on its first image; ``opened(loop)`` then), press R, step once: two
    frames are written, and the file is finished."""
    loop, _ = _folder_loop(folder)
    try:
        loop._drain_commands()
        if opened is not None:
            opened(loop)
        loop.put(cmd.StartRecording(path))
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.recorder.frames_written == 2
    finally:
        loop._stop_recording()
        loop.playback.close()


def test_a_recording_of_a_folder_fits_its_largest_image(tmp_path):
    """A GUI trial: a recording begun on a folder's 20 x 12 image was a 20 x 12 video, every later
    image squeezed into it. It is now as large as the folder's largest width and height (read from
    the headers, a photo's EXIF turn applied), each image letterboxed into it."""
    av = pytest.importorskip("av")
    import cv2
    from PIL import Image

    from eigencam_live.video.images import read_image

    cv2.imwrite(str(tmp_path / "f0.png"), np.full((12, 20, 3), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "f1.png"), np.full((48, 64, 3), 100, np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 90 x 30, shown turned a quarter: 30 x 90
    Image.fromarray(np.full((30, 90, 3), 50, np.uint8)).save(tmp_path / "f2.jpg", exif=exif.tobytes())
    (tmp_path / "f3.png").write_bytes(b"not an image")
    # a TIFF's turn too (a review: Pillow gives its size turned already, and it was turned twice)
    Image.fromarray(np.full((20, 100, 3), 50, np.uint8)).save(tmp_path / "f4.tif", exif=exif.tobytes())
    assert read_image(tmp_path / "f2.jpg")[0].shape == (90, 30, 3)
    assert read_image(tmp_path / "f4.tif")[0].shape == (100, 20, 3)

    def opened(loop) -> None:
        assert loop.playback.largest_frame() == (64, 100)

    _record_a_still_and_a_step(tmp_path, tmp_path / "r.mp4", opened)  # begun on f0, the 20 x 12 one
    with av.open(str(tmp_path / "r.mp4")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]
    assert [f.shape for f in frames] == [(100, 64, 3)] * 2
    rows = np.flatnonzero(frames[0][:, 32, 1] > 100)  # 20 x 12 enlarged 3.2 times: 64 x 38, in the middle
    assert abs(len(rows) - 38) <= 2 and abs(rows.min() - 31) <= 2
    # 64 x 48 as it is (rows 26 to 73; H.264 blurs the edges with the bars), bars above and below
    assert np.abs(frames[1][30:70].astype(int) - 100).max() <= 6 and frames[1][:22].max() < 20


def test_a_pause_lands_on_the_frame_on_screen_not_on_the_one_in_flight(tmp_path):
    """A GUI trial at 4K: Space showed the frame after the one on screen (the worker finished the
    frame in flight after the pause), 0.2 s later in the clip. The pause stays on the frame shown;
    the one in flight waits for the next step, and is recorded once."""
    _stills(tmp_path, 6)
    loop, _ = _folder_loop(tmp_path)
    try:
        loop._drain_commands()  # a folder opens paused on its first still
        loop.put(cmd.StartRecording(tmp_path / "r.mp4"))
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        shown = None
        for _ in range(3):  # played as the run loop does: f1 and f2 reach the screen, f3 is in flight
            loop._play(timeout=5)
            if loop.shown.last.index < 3:
                shown = loop.mailbox.take()
        assert shown.frame.index == 2 and loop.recorder.frames_written == 4
        assert shown.pauses == 0, "the folder's own pause is not one of the window's"
        loop.put(cmd.SetPaused(True, shown=shown.frame))
        loop.put(cmd.SetRender(RenderConfig(view="original")))  # redrawn: the frame on screen
        loop._drain_commands()
        redrawn = loop.mailbox.take()
        assert redrawn.frame is shown.frame and not redrawn.played and redrawn.pauses == 1
        steps = []
        for _ in range(2):
            loop.put(cmd.Step(1))
            loop._drain_commands()
            steps.append(loop.mailbox.take().frame.index)
        assert steps == [3, 4]
        assert loop.recorder.frames_written == 5, "f3 was recorded in play: not again at its step"
        loop.put(cmd.Step(-1))
        loop._drain_commands()
        assert loop.mailbox.take().frame.index == 3
    finally:
        loop._stop_recording()
        loop.playback.close()


class _Stateful(_Recording):
    """An engine with a video state: each picture says how many frames it drew."""

    def __init__(self) -> None:
        self.drawn = 0

    def process(self, image, render=None):
        self.drawn += 1
        return [SimpleNamespace(picture=np.full_like(image, self.drawn), heatmap=None)]


def test_the_frames_a_pause_went_back_over_are_shown_as_drawn_until_a_setting_changes(tmp_path):
    """A review: the frames a pause went back over were drawn again through the engine's video
    state, which was past them (with smoothing on, another map than the one first shown; 0.2 s a
    frame at 4K). They are shown as drawn, in play and by steps, and recorded once; after a setting
    changed they are drawn again."""
    _stills(tmp_path, 8)
    loop, _ = _folder_loop(tmp_path)
    loop.engine = engine = _Stateful()
    try:
        loop._drain_commands()  # a folder opens paused on its first still
        loop.mailbox.take()
        loop.put(cmd.StartRecording(tmp_path / "r.mp4"))
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        first = {}
        for _ in range(4):  # f1 reaches the screen; f2, f3, f4 are in flight
            loop._play(timeout=5)
            packet = loop.mailbox.take()
            first[packet.frame.index] = packet
        assert sorted(first) == [1, 2, 3, 4] and loop.recorder.frames_written == 5
        loop.put(cmd.SetPaused(True, shown=first[1].frame))
        loop._drain_commands()
        drawn = engine.drawn
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        loop._play(timeout=5)
        played = loop.mailbox.take()
        assert played.frame is first[2].frame and played.played and engine.drawn == drawn
        assert np.array_equal(played.image, first[2].image)
        loop.put(cmd.SetPaused(True, shown=played.frame))
        loop.put(cmd.Step(1))
        loop._drain_commands()
        stepped = loop.mailbox.take()
        assert stepped.frame is first[3].frame and engine.drawn == drawn
        assert np.array_equal(stepped.image, first[3].image)
        loop.put(cmd.SetRender(RenderConfig(view="original")))  # f3 drawn again; f4 will be too
        loop._drain_commands()
        assert loop.mailbox.take().frame is first[3].frame and engine.drawn == drawn + 1
        loop.put(cmd.Step(1))
        loop._drain_commands()
        again = loop.mailbox.take()
        assert again.frame is first[4].frame and engine.drawn == drawn + 2
        assert not np.array_equal(again.image, first[4].image)
        assert loop.recorder.frames_written == 5, "each frame recorded once"
    finally:
        loop._stop_recording()
        loop.playback.close()


def test_a_pause_goes_back_over_two_frames_and_no_further(tmp_path):
    """The window two frames behind (one waits in the mailbox, one more was processed): the pause
    goes back to the frame on screen and both wait. Further behind than the loop keeps (a window
    that stalled), the pause shows the frame the loop is on, as paused on (not as played, which
    the window drops: in flight at the pause)."""
    _stills(tmp_path, 9)
    loop, _ = _folder_loop(tmp_path)

    def play(frames: int) -> None:
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        for _ in range(frames):
            loop._play(timeout=5)

    def step() -> int:
        loop.put(cmd.Step(1))
        loop._drain_commands()
        return loop.mailbox.take().frame.index

    try:
        loop._drain_commands()
        loop.mailbox.take()
        play(1)
        shown = loop.mailbox.take()
        play(2)  # f2 waits in the mailbox, f3 was in flight
        loop.put(cmd.SetPaused(True, shown=shown.frame))
        loop._drain_commands()
        assert loop.shown.last is shown.frame
        assert [step(), step()] == [2, 3]
        shown = loop._last_packet  # f3, the step's, on screen
        play(5)  # f4 to f8: f3 is no longer held
        loop.put(cmd.SetPaused(True, shown=shown.frame))
        loop._drain_commands()
        newest = loop.mailbox.take()
        assert newest.frame.index == 8 and not newest.played and loop.shown.last is newest.frame
    finally:
        loop.playback.close()


def test_a_size_onnx_runtime_refuses_and_the_way_back_are_both_shown(tmp_path):
    """A network whose export holds its first input's size: at another size torch runs it (said as
    a warning, "In use" says torch); back at the first size ONNX Runtime runs it again, and "In
    use" said torch for good (the status was sent only when a warning came)."""
    import torch

    from .test_backends import Baked

    torch.manual_seed(0)
    config = EngineConfig(weights="none", short_side=64, layer="features", device="cpu", backend="onnxruntime")
    out = Out()
    loop = FrameLoop(config, RenderConfig(), out)
    loop.engine = Engine(config, model=Baked())
    loop._announce_engine()
    for size in ((96, 64), (160, 64), (160, 64), (96, 64)):
        loop._process(frame(0, size), record=False)
    running = [args[0].backend for args in out.engine_changed.calls]
    assert running[0] == "onnxruntime" and running[-2:] == ["torch", "onnxruntime"]
    # the warning goes with the window's status (which shows it while it holds): it names its size
    said = [args[0].backend_warning for args in out.engine_changed.calls]
    assert said[0] is None and "at 160x64" in said[-2] and said[-1] == said[-2]
    assert out.warning.calls == [] and not out.errors()


def test_what_the_window_says_of_weights_it_cannot_know_and_of_a_factorys_detector(tmp_path, monkeypatch):
    """An ONNX file with random weights was said to be 'trained'; a factory's detector got a
    classifier's 'Predictions' panel."""
    import torch

    from ui.engine_status import EngineStatus

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 3))
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, 64, 64),), str(path), input_names=["x"],
                      dynamic_axes={"x": {2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    assert EngineStatus.of(Engine(EngineConfig(model=str(path), short_side=64))).weights_said == "own weights"
    assert EngineStatus.of(Engine(FAST)).weights_said == "untrained"
    torch.save(Engine(FAST).loaded.net.state_dict(), tmp_path / "mine.pth")  # random: no one can tell
    assert EngineStatus.of(Engine(replace(FAST, weights=str(tmp_path / "mine.pth")))).weights_said == "own weights"
    (tmp_path / "dets.py").write_text(
        "import torchvision\n"
        "def build():\n"
        "    return torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)\n")
    monkeypatch.chdir(tmp_path)
    status = EngineStatus.of(Engine(EngineConfig(model="dets:build", device="cpu")))
    assert status.detector and status.weights_said == "own weights"


def test_comparing_layers_of_an_exported_network_exports_nothing_more(tmp_path, monkeypatch):
    """Each compared layer was exported to ONNX for one tile (four more files of the whole network in
    the cache; seconds each): torch makes the tiles, and the engine is put back as it was."""
    from eigencam_live.backends import cache_dir, torch_backend
    from ui.compare import layer_tiles

    monkeypatch.setenv("EIGENCAM_CACHE", str(tmp_path / "cache"))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(1000)))
    config = EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu", backend="onnxruntime",
                          labels=str(labels))
    engine = Engine(config)
    image = frame(0, (128, 96)).image
    engine.process_one(image)
    exports = sorted(cache_dir().glob("*.onnx"))
    assert len(exports) == 1
    layers = ("features.3", "features.8", "features")
    backend = engine.backend
    traced = []
    monkeypatch.setattr(torch_backend, "build_traced", lambda *a, **k: traced.append(a))
    labels.unlink()  # read once, at load: the tiles' engine does not read it again (it failed)
    assert engine.tracker._basis is not None  # the state of the frames before
    tiles, refused = layer_tiles(engine, image, RenderConfig(view="heatmap"), layers)
    # the view is redrawn from this frame alone, as the tiles are (a CI run under load: the view was
    # drawn from the earlier frames' state, its map once the other way up)
    assert engine.tracker._basis is None
    assert sorted(cache_dir().glob("*.onnx")) == exports and not refused
    assert not traced  # no traced copy built for one tile and thrown away
    reference = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu",
                                    backend="torch", optimize=False), model=engine.loaded)
    for name, picture, explained in tiles:
        reference.reconfigure(layer=name)
        reference.reset()
        want = reference.process(image, render=RenderConfig(view="heatmap"))[0]
        assert explained == pytest.approx(float(want.explained_component), abs=1e-4)
        assert np.corrcoef(picture.ravel().astype(float), want.picture.ravel().astype(float))[0, 1] > 0.99
    assert [t[0] for t in tiles] == list(layers)
    assert engine.config == config and engine.layer == "features" and engine.backend is backend
    assert not engine.backend.preparing  # its session kept: no second "Preparing…" after a comparison
    engine.process_one(image)
    assert engine.backend.running == "onnxruntime" and sorted(cache_dir().glob("*.onnx")) == exports


def test_a_looped_folder_measures_its_rates_on_across_its_passes(tmp_path):
    """Loop files on a five-image folder: each pass's seek to 0 cleared the rates (0.0 fps in half
    the samples while it played at 30 fps). A looped start goes on counting; a user's seek clears."""
    import cv2

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), np.full((30, 40, 3), 40 * i, np.uint8))
    loop, _ = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        for _ in range(4):
            loop.put(cmd.Step(1))
            loop._drain_commands()
        assert loop.shown.last.index == 4
        for i in range(5):
            loop.capture_rate.tick(i, t=10.0 + i / 30)
        loop.put(cmd.Seek(0, loop=True))  # the window's loop at the end
        loop._drain_commands()
        assert loop._looped == 5 and loop.capture_rate.newest is not None
        loop.capture_rate.tick(loop._looped + 0, t=10.0 + 5 / 30)
        assert loop.capture_rate.rate(now=10.2) == pytest.approx(30.0)
        loop.put(cmd.Seek(2))  # the user's: a new measurement
        loop._drain_commands()
        assert loop._looped == 0 and loop.capture_rate.newest is None
    finally:
        loop.playback.close()


def test_a_second_pause_before_the_waiting_frames_are_shown_keeps_them_all_and_records_each_once(tmp_path):
    """A review: Space, Space again before the first waiting frame reached the screen: the second
    pause dropped the frames still waiting (a step skipped one), and the one replayed in between
    was recorded again, out of order."""
    _stills(tmp_path, 8)
    loop, _ = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        loop.mailbox.take()
        loop.put(cmd.StartRecording(tmp_path / "r.mp4"))  # paused: f0, on screen, is written
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        shown = loop._play(timeout=5)  # f1 on screen; f2 and f3 in flight
        loop._play(timeout=5)
        loop._play(timeout=5)
        for _ in range(2):
            loop.put(cmd.SetPaused(True, shown=shown))
            loop.put(cmd.SetPaused(False))
            loop._drain_commands()
            assert loop._play(timeout=5).index == 2  # and paused again before it reached the screen
        loop.put(cmd.SetPaused(True, shown=shown))
        steps = []
        for _ in range(3):
            loop.put(cmd.Step(1))
            loop._drain_commands()
            steps.append(loop.mailbox.take().frame.index)
        assert steps == [2, 3, 4]
        assert loop.recorder.frames_written == 5, "f0 to f4, each once"
    finally:
        loop._stop_recording()
        loop.playback.close()


def test_play_after_a_pause_just_before_the_end_says_the_end_again(tmp_path):
    """A review: the end was reached (and said) while the last frame was in flight at a pause;
    play showed that frame and then sat on it, playing, with no end said (no loop, no pause)."""
    _stills(tmp_path, 4)
    loop, out = _folder_loop(tmp_path)
    try:
        loop._drain_commands()
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        played = [loop._play(timeout=5) for _ in range(3)]  # f2 on screen, f3 in flight
        assert loop._play(timeout=5) is None and len(out.source_ended.calls) == 1
        loop.put(cmd.SetPaused(True, shown=played[1]))
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        assert loop._play(timeout=5) is played[2]
        assert len(out.source_ended.calls) == 2 and loop._ended
    finally:
        loop.playback.close()


def test_a_pause_on_the_demo_clip_keeps_its_frame_in_flight_for_the_step():
    """A GUI trial: the demo clip (live, but it waits while paused) skipped the frame in flight at
    a pause, at the first step or at play: its next frame is the one after, not a newer one."""
    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out)
    loop.engine = _Recording()
    loop.put(cmd.OpenSource("demo"))
    try:
        loop._drain_commands()
        played = []
        for _ in range(3):
            played.append(loop._play(timeout=5))
        loop.put(cmd.SetPaused(True, shown=played[1]))
        loop.put(cmd.Step(1))
        loop._drain_commands()
        assert loop.mailbox.take().frame is played[2]
        loop.put(cmd.SetPaused(False))  # played on, paused on the one before the last again, played on
        loop._drain_commands()
        for _ in range(3):
            played.append(loop._play(timeout=5))
        loop.put(cmd.SetPaused(True, shown=played[-2]))
        loop.put(cmd.SetPaused(False))
        loop._drain_commands()
        # (the second trial: the clip then went on from its newest frame, as a camera does, one skipped)
        assert [loop._play(timeout=5).index for _ in range(2)] == [played[-1].index, played[-1].index + 1]
    finally:
        loop.playback.close()


def test_a_live_sources_frames_in_flight_at_a_pause_are_let_go():
    """A camera's next frame is its newest: the pause goes back to the frame on screen, and the
    ones played after it do not wait (they would be stale)."""
    from ui.shown import ShownFrames

    shown = ShownFrames()
    frames = [frame(i) for i in range(4)]
    for f in frames:
        shown.now_at(f, played=True)
    assert shown.land_on(frames[1], keep=False) and shown.last is frames[1] and not shown.waiting
    for f in frames:
        shown.now_at(f, played=True)
    assert shown.land_on(frames[1], keep=True) and shown.last is frames[1]
    assert [shown.take()[0].index for _ in range(2)] == [2, 3] and not shown.waiting
    assert not shown.land_on(frame(9), keep=True) and shown.last is frames[1], "not kept: nothing changes"


def test_the_starting_source_opens_before_the_model_loads_and_its_size_lists_the_layers():
    """The source box said "Opening car-detection.mp4…" through a detector's 15 s load, and the layers
    came for a square input, then for the frames' once one had been through (a trial): the source
    the window starts on opens first, and the layers are listed for its frames from the start. A
    command line's source that cannot be had ends the run before any model loads."""
    import threading

    order: list[str] = []

    class Ordered(Out):
        def __getattr__(self, name: str) -> Signal:
            signal = super().__getattr__(name)
            emit = signal.emit
            signal.emit = lambda *args: (order.append(name), emit(*args))
            return signal

    out = Ordered()
    loop = FrameLoop(FAST, RenderConfig(), out, demo_size=(320, 120))
    loop.put(cmd.OpenSource("scene"))
    worker = threading.Thread(target=loop.run)
    worker.start()
    try:
        for _ in range(600):  # the first frame's packet, or 60 s
            if loop.frames_processed:
                break
            loop.stop_event.wait(0.1)
    finally:
        loop.stop_event.set()
        loop.wake.set()
        worker.join(30)
    assert not worker.is_alive() and loop.frames_processed >= 1, out.errors()
    assert order.index("source_opened") < order.index("busy") < order.index("engine_changed")  # "loading ..."
    (model, layers), *later = out.layers_ready.calls
    engine = Engine(FAST)
    assert engine.input_size((120, 320)) == (64, 160)  # not the square 64 x 64
    want = {layer.name: layer.shape for layer in engine.feature_layers((120, 320))}
    assert {layer.name: layer.shape for layer in layers} == want and later == []  # no second list at the first frame

    out, order[:] = Ordered(), []
    loop = FrameLoop(FAST, RenderConfig(), out, demo_size=(96, 64), required=frozenset({"source"}))
    loop.put(cmd.OpenSource("/no/such/clip.mp4"))
    loop.run()
    assert "clip.mp4" in out.fatal.calls[0][0] and "busy" not in order and loop.engine is None


def test_a_window_closed_while_the_layers_are_listed_is_told_nothing(engine, monkeypatch):
    """CI segfaulted four times in the worker's layers_ready emission, each time while a test closed
    its window during a reconfigure's layer listing (seconds under load). Once closed, nothing is
    emitted, even when the close comes while the list is being made."""
    import ui.loop_settings

    out = Out()
    loop = FrameLoop(FAST, RenderConfig(), out)
    loop.engine = engine
    listed = ui.loop_settings.layer_list

    def closed_meanwhile(*args, **kwargs):
        loop.stop_event.set()  # the window closes while the worker lists the layers
        return listed(*args, **kwargs)

    monkeypatch.setattr(ui.loop_settings, "layer_list", closed_meanwhile)
    loop._announce_engine()
    assert out.engine_changed.calls and not out.layers_ready.calls
    monkeypatch.setattr(ui.loop_settings, "layer_list", listed)
    loop.stop_event.clear()
    loop._announce_engine()
    assert out.layers_ready.calls and out.layers_ready.calls[-1][0] == engine.config.model
