"""ui.recorder: the app's recorder writes real MP4s through VideoSink, without Qt."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from eigencam_live.errors import SinkError
from ui.recorder import Recorder, letterbox

ROOT = Path(__file__).resolve().parents[1]


def test_the_worker_parts_import_without_qt():
    """The recorder, the loop and the tables are plain Python: Qt stays in the window, worker and widgets."""
    modules = ["ui.recorder", "ui.frame_loop", "ui.playback", "ui.rates", "ui.commands", "ui.settings",
               "ui.shortcuts", "ui.engine_status", "ui.handoff"]
    code = f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if 'PyQt' in m))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """A frame whose mean brightness encodes ``i`` (survives H.264)."""
    w, h = size
    return np.full((h, w, 3), 20 + 15 * i, np.uint8)


def test_records_frames_with_their_timestamps_from_zero(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "rec.mp4"
    rec = Recorder()
    rec.start(path, fps=25.0)
    assert rec.active and rec.frames_written == 0 and not path.exists()
    size = (161, 121)  # odd: VideoSink pads it, the recorder does not
    t0 = 5.0  # a live source's clock does not start at 0: the video does
    pts = [t0 + 0.04 * i for i in range(10)] + [t0 + 0.36]  # the last repeats a time: still increasing
    for i, t in enumerate(pts):
        rec.write(_frame(i, size), t)
    assert rec.frames_written == len(pts)
    assert rec.stop() == path and not rec.active
    assert rec.stop() is None  # idempotent
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == Fraction(25) or stream.codec_context.framerate == Fraction(25)
        frames = list(c.decode(stream))
    assert len(frames) == len(pts)
    assert frames[0].width == 162 and frames[0].height == 122
    times = [float(f.pts * f.time_base) for f in frames]
    assert times[0] == pytest.approx(0.0, abs=1e-4)
    assert times[:10] == pytest.approx([0.04 * i for i in range(10)], abs=1e-3)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    means = [f.to_ndarray(format="bgr24")[:121, :161].mean() for f in frames]
    assert means[:10] == pytest.approx([20 + 15 * i for i in range(10)], abs=6)  # limited-range YUV rounding


def test_a_frame_of_another_size_is_letterboxed(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "views.mp4"
    rec = Recorder()
    rec.start(path, fps=10.0)
    rec.write(np.full((60, 80, 3), 200, np.uint8), 0.0)
    rec.write(np.full((60, 160, 3), 200, np.uint8), 0.1)  # side-by-side view: twice as wide
    rec.stop()
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]
    assert len(frames) == 2 and frames[1].shape == (60, 80, 3)
    assert frames[1][:12].mean() < 20 and frames[1][25:35].mean() > 180  # black bars above, picture in the middle


def test_letterbox_keeps_the_aspect():
    out = letterbox(np.full((10, 40, 3), 255, np.uint8), 20, 20)
    assert out.shape == (20, 20, 3)
    rows = np.flatnonzero(out[:, :, 0].max(axis=1) > 0)
    assert (rows.min(), rows.max()) == (7, 11)  # 20x5 picture, (20 - 5) // 2 = 7 rows of bar above


def test_nothing_written_makes_no_file_and_errors_name_the_path(tmp_path):
    rec = Recorder()
    assert rec.stop() is None and rec.write(_frame(0, (8, 8)), 0.0) is None  # not recording: no-op
    rec.start(tmp_path / "empty.mp4", fps=30.0)
    assert rec.stop() == tmp_path / "empty.mp4" and not (tmp_path / "empty.mp4").exists()
    rec.start(tmp_path / "missing" / "x.mp4", fps=30.0)
    with pytest.raises(SinkError, match="cannot record to .*missing"):
        rec.write(_frame(0, (8, 8)), 0.0)
    assert rec.stop() == tmp_path / "missing" / "x.mp4"
    with pytest.raises(SinkError, match="fps"):
        rec.start(tmp_path / "y.mp4", fps=0)
    rec.start(tmp_path / "y.mp4", fps=30)
    with pytest.raises(SinkError, match="already recording"):
        rec.start(tmp_path / "z.mp4", fps=30)


def test_timecode_stamp_writes_the_bottom_left_only_and_leaves_the_input_alone():
    from ui.recorder import stamp_timecode

    image = np.full((480, 640, 3), 128, np.uint8)
    stamped = stamp_timecode(image, 21, 61.5)
    assert (image == 128).all(), "the input is not touched"
    changed = np.any(stamped != image, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() > 480 * 0.8 and xs.max() < 640 * 0.6, "a small box at the bottom left"
    assert (stamped[changed] == 255).any(), "white text on it"
    # a small picture keeps most of itself, a tiny one all of it (trials: a 20 x 12 image was all
    # stamp, a 160 x 90 one had a band across its bottom)
    small = np.full((180, 320, 3), 128, np.uint8)
    changed = np.any(stamp_timecode(small, 8, 1.0) != small, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any() and ys.min() >= 180 * 0.84 and xs.max() < 320 * 0.55
    for tiny in (np.full((12, 20, 3), 128, np.uint8), np.full((90, 160, 3), 128, np.uint8)):
        assert np.array_equal(stamp_timecode(tiny, 8, 1.0), tiny)



def test_a_file_that_takes_the_name_while_recording_is_kept_and_the_recording_named_beside_it(tmp_path):
    """Two apps recording in the same second pick one name (each checks only its own names and the
    folder at the start); the second to stop replaced the first's file. Now it is named NAME-2."""
    av = pytest.importorskip("av")
    path = tmp_path / "eigencam-20261129-101500.mp4"
    rec = Recorder()
    rec.start(path, fps=25.0)
    for i in range(4):
        rec.write(_frame(i, (64, 48)), 0.04 * i)
    path.write_bytes(b"the other app's recording")  # finished first, under the same name
    beside = tmp_path / "eigencam-20261129-101500-2.mp4"
    assert rec.stop() == beside
    assert path.read_bytes() == b"the other app's recording"  # untouched
    with av.open(str(beside)) as c:
        assert [f.width for f in c.decode(video=0)] == [64] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, beside.name])  # no part left
    # taken before its first frame (started while paused): it opens beside it, not failing with "exists"
    later = tmp_path / "eigencam-20261129-101501.mp4"
    rec.start(later, fps=25.0)
    later.write_bytes(b"the other app's")
    rec.write(_frame(0, (64, 48)), 0.0)
    assert rec.stop() == tmp_path / "eigencam-20261129-101501-2.mp4" and later.read_bytes() == b"the other app's"
