"""Frame sources and the threaded capture: exact rates, no drops for files, drops for live sources,
bounded stop, errors carried to the consumer, reconnection."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from eigencam_live.errors import SourceError
from eigencam_live.sources import (
    Capture,
    DemoSource,
    FileSource,
    FolderSource,
    Frame,
    FrameSource,
    SourceInfo,
    open_source,
)

from .media import NTSC, write_clip, write_empty, write_text_as_video, write_truncated


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", frames=24, size=(96, 64), rate=NTSC)


def test_file_source_reports_exact_rate_size_and_count(clip):
    with open_source(str(clip)) as src:
        assert isinstance(src, FileSource)
        info = src.info
        assert (info.kind, info.width, info.height, info.frame_count) == ("file", 96, 64, 24)
        assert info.rate == Fraction(30000, 1001)  # 29.97 stays 29.97, never int(fps)
        assert info.fps == pytest.approx(29.97003)
        assert not info.live and info.seekable and not info.has_audio
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert [f.index for f in frames] == list(range(24))
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8
    assert frames[5].pts == pytest.approx(5 * 1001 / 30000, abs=1e-4)
    assert src.warning is None


def test_file_capture_never_drops_with_a_slow_consumer(clip):
    with Capture(open_source(str(clip)), queue_size=2) as cap:
        got = []
        for frame in cap:
            time.sleep(0.005)
            got.append(frame.index)
        assert cap.read() is None  # the end stays the end
    assert got == list(range(24))
    assert cap.dropped == 0


def test_paced_live_source_drops_stale_frames_and_counts_them():
    src = DemoSource((64, 48), fps=200, realtime=True)
    assert src.info.live
    with Capture(src) as cap:
        indices = []
        for _ in range(10):
            indices.append(cap.read(timeout=2.0).index)
            time.sleep(0.03)  # a consumer ~6x slower than the source
        assert cap.dropped > 0
    assert indices == sorted(indices)
    assert indices[-1] - indices[0] > len(indices)  # gaps: the consumer always got recent frames


def test_frames_carry_capture_time(clip):
    with Capture(open_source(str(clip))) as cap:
        before = time.monotonic()
        frame = cap.read(timeout=5)
    assert before - 5 <= frame.captured <= time.monotonic()


@pytest.mark.timeout(20)
def test_stop_is_bounded_with_a_full_queue(clip):
    cap = Capture(open_source(str(clip)), queue_size=1).start()
    cap.read(timeout=5)
    time.sleep(0.2)  # the capture thread is now waiting for room
    t0 = time.monotonic()
    cap.stop()
    assert time.monotonic() - t0 < 1.0
    assert not cap.running


@pytest.mark.timeout(20)
def test_stop_is_bounded_for_a_live_source():
    cap = Capture(DemoSource((64, 48), fps=30, realtime=True)).start()
    cap.read(timeout=2)
    t0 = time.monotonic()
    cap.stop()
    assert time.monotonic() - t0 < 1.0
    assert not cap.running


@pytest.mark.timeout(20)
def test_a_raising_consumer_does_not_leave_the_capture_thread_blocked(clip):
    with pytest.raises(RuntimeError, match="consumer"):
        with Capture(open_source(str(clip)), queue_size=1) as cap:
            for frame in cap:
                if frame.index == 2:
                    raise RuntimeError("consumer failed")
    assert not cap.running


class _Failing(FrameSource):
    """Three frames, then a read error."""

    def __init__(self) -> None:
        self.info = SourceInfo("file", "failing", 8, 8, Fraction(10), None, False, False)
        self.n = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self.n == 3:
            raise SourceError("disk on fire")
        self.n += 1
        return Frame(np.zeros((8, 8, 3), np.uint8), self.n - 1, self.n / 10, time.monotonic())

    def close(self) -> None:
        self.closed = True


@pytest.mark.timeout(20)
def test_an_error_in_the_capture_thread_reaches_the_consumer():
    src = _Failing()
    with Capture(src) as cap:
        got = [cap.read(timeout=2).index for _ in range(3)]
        with pytest.raises(SourceError, match="disk on fire"):
            cap.read(timeout=2)
    assert got == [0, 1, 2]
    assert src.closed


class _Flaky(FrameSource):
    """A live stream that drops out after 3 frames; ``reopen`` fails ``fail_reopen`` times."""

    def __init__(self, fail_reopen: int) -> None:
        self.info = SourceInfo("stream", "flaky", 8, 8, Fraction(100), None, True, False)
        self.fail_reopen = fail_reopen
        self.reopens = 0
        self.n = 0
        self.dropped_out = False

    def read(self) -> Frame | None:
        time.sleep(0.01)
        if self.n == 3 and not self.dropped_out:
            self.dropped_out = True
            return None
        self.n += 1
        return Frame(np.zeros((8, 8, 3), np.uint8), self.n - 1, self.n / 100, time.monotonic())

    def reopen(self) -> None:
        self.reopens += 1
        if self.reopens <= self.fail_reopen:
            raise SourceError("connection refused")


@pytest.mark.timeout(20)
def test_a_live_source_that_drops_out_is_reconnected_and_the_consumer_sees_it():
    src = _Flaky(fail_reopen=2)
    seen_reconnecting = False
    with Capture(src, queue_size=8, reconnect_delays=(0.1, 0.1, 0.1, 0.1)) as cap:
        frames = []
        while len(frames) < 6:
            seen_reconnecting |= cap.reconnecting
            try:
                frames.append(cap.read(timeout=0.02))
            except TimeoutError:
                continue
    assert seen_reconnecting
    assert src.reopens == 3
    assert [f.index for f in frames] == list(range(6))


@pytest.mark.timeout(20)
def test_reconnection_gives_up_after_bounded_attempts():
    src = _Flaky(fail_reopen=100)
    with Capture(src, reconnect_delays=(0.05, 0.05, 0.05)) as cap:
        with pytest.raises(SourceError, match="gave up after 3"):
            while True:
                cap.read(timeout=5)
    assert src.reopens == 3


def test_a_webcam_that_does_not_exist_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="camera"):
        open_source(7)
    with pytest.raises(SourceError, match="camera"):
        open_source("9")
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("make", ["missing", "empty", "text"])
def test_bad_files_raise_one_line_source_errors(tmp_path, make):
    path = tmp_path / "bad.mp4"
    if make == "empty":
        write_empty(path)
    elif make == "text":
        write_text_as_video(path)
    with pytest.raises(SourceError) as err:
        open_source(str(path))
    message = str(err.value)
    assert "\n" not in message and "bad.mp4" in message


def test_a_cut_off_file_yields_what_decodes_and_warns(tmp_path):
    path = write_truncated(tmp_path / "cut.mp4", frames=40, keep=0.5)
    with Capture(open_source(str(path))) as cap:
        frames = list(cap)
        assert 0 < len(frames) < 40
        assert "cut off" in cap.warning and "of 40 frames" in cap.warning


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    times = [0.0, 0.03, 0.1, 0.12, 0.3, 0.31, 0.5]
    path = write_clip(tmp_path / "vfr.mp4", pts=times)
    with Capture(open_source(str(path))) as cap:
        got = [f.pts for f in cap]
    assert got == pytest.approx(times, abs=1e-4)


def test_file_seek_returns_the_requested_frame(clip):
    with Capture(open_source(str(clip))) as cap:
        cap.read(timeout=5)
        cap.seek(15)
        frame = cap.read(timeout=5)
        assert frame.index == 15
        assert frame.pts == pytest.approx(15 * 1001 / 30000, abs=1e-4)
        assert [f.index for f in cap] == list(range(16, 24))


def test_folder_and_glob_sources_read_images_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        img = np.full((20, 30, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"img{i}.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    for spec in (str(tmp_path), str(tmp_path / "img*.png")):
        src = open_source(spec, folder_fps=25)
        assert isinstance(src, FolderSource)
        assert (src.info.width, src.info.height, src.info.frame_count, src.info.rate) == (30, 20, 3, 25)
        with Capture(src) as cap:
            frames = list(cap)
        assert [int(f.image[0, 0, 0]) for f in frames] == [20, 40, 200]
        assert [f.pts for f in frames] == pytest.approx([0, 0.04, 0.08])


def test_an_empty_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


def test_demo_scene_is_deterministic_sized_and_moving():
    a = open_source("demo", demo_size=(160, 120), demo_fps=25, realtime=False, demo_frames=5)
    b = DemoSource((160, 120), 25, realtime=False, frames=5)
    assert (a.info.width, a.info.height, a.info.rate, a.info.live) == (160, 120, Fraction(25), False)
    with Capture(a) as cap:
        frames = list(cap)
    assert len(frames) == 5 and frames[0].image.shape == (120, 160, 3)
    assert np.array_equal(frames[3].image, b.render(3))
    assert not np.array_equal(frames[0].image, frames[4].image)
    assert frames[4].pts == pytest.approx(4 / 25)


def test_demo_is_live_and_paced_by_default():
    src = open_source("demo", demo_size=(64, 48), demo_fps=50)
    assert src.info.live and src.info.kind == "demo"
    t0 = time.monotonic()
    for _ in range(6):
        src.read()
    assert time.monotonic() - t0 >= 0.08  # 5 intervals of 20 ms
    src.close()


def test_capture_thread_does_not_outlive_its_context(clip):
    before = threading.active_count()
    with Capture(open_source(str(clip))) as cap:
        cap.read(timeout=5)
    assert threading.active_count() <= before
