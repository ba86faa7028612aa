"""The threaded capture: no drops for files, drops for live sources, bounded stop, errors carried to the
consumer, reconnection."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from eigencam_live.errors import SourceError
from eigencam_live.video import (
    Capture,
    DemoSource,
    Frame,
    FrameSource,
    SourceInfo,
    open_source,
)

from .media import NTSC, write_clip


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", frames=24, size=(96, 64), rate=NTSC)


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
    indices = [f.index for f in frames]
    # In order; a live capture may skip a frame that a newer due one overtook (a busy machine).
    assert indices == sorted(set(indices)) and indices[-1] >= 5


@pytest.mark.timeout(20)
def test_reconnection_gives_up_after_the_attempts_asked_for():
    src = _Flaky(fail_reopen=100)
    with Capture(src, reconnect_delays=(0.05,), reconnect_attempts=3) as cap:
        with pytest.raises(SourceError, match="gave up after 3"):
            while True:
                cap.read(timeout=5)
    assert src.reopens == 3


def test_capture_thread_does_not_outlive_its_context(clip):
    before = threading.active_count()
    with Capture(open_source(str(clip))) as cap:
        cap.read(timeout=5)
    assert threading.active_count() <= before


class _LateLive(FrameSource):
    """A 50 fps camera whose frames 5-24 arrive 0.4 s late (its thread starved while a network was
    being exported), the next ones at once, and then on time again."""

    def __init__(self) -> None:
        self.info = SourceInfo("webcam", "late", 8, 8, Fraction(50), None, True, False)
        self.t0: float | None = None
        self.n = 0

    def read(self) -> Frame | None:
        if self.t0 is None:
            self.t0 = time.monotonic()
        i = self.n
        self.n += 1
        due = self.t0 + i / 50 + (0.4 if 5 <= i < 25 else 0.0)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the camera's own pace
        return Frame(np.zeros((8, 8, 3), np.uint8), i, i / 50, self.t0 + i / 50)


@pytest.mark.timeout(20)
def test_a_reader_back_from_a_long_call_gets_the_newest_frame_on_time():
    """Frames that came late while nobody read (the app exporting its network) leave no latency
    behind: the reader back after a second gets the newest frame, and the next ones as they come
    (the 0.4 s the camera slipped would otherwise stay until a slack window has passed)."""
    with Capture(_LateLive()) as cap:
        while cap.read(timeout=2.0).index < 4:
            pass
        away = threading.Event()
        away.wait(1.0)  # the reader is busy elsewhere (a model being prepared)
        late = []
        t_end = time.monotonic() + 0.6
        while time.monotonic() < t_end:
            frame = cap.read(timeout=2.0)
            late.append((frame.index, time.monotonic() - frame.captured))
    indices = [i for i, _ in late]
    assert indices == sorted(indices) and indices[0] >= 40, late  # the newest, not the backlog
    assert max(v for _, v in late[len(late) // 2 :]) < 0.25, late  # on time again, not 0.4 s behind


class _Ahead(FrameSource):
    """A live stream that delivers faster than its 40 fps clock (a file behind an HTTP URL)."""

    def __init__(self) -> None:
        self.info = SourceInfo("stream", "ahead", 8, 8, Fraction(40), None, True, False)
        self.n = 0

    def read(self) -> Frame | None:
        i = self.n
        self.n += 1
        time.sleep(0.001)
        return Frame(np.zeros((8, 8, 3), np.uint8), i, i / 40, time.monotonic())


@pytest.mark.timeout(20)
def test_a_reader_back_from_a_long_call_never_skips_ahead_of_the_clock():
    """Frames held back because they came early are the future, not a backlog: a reader back
    after a second goes on from where the clock stands (~40 frames on), not from the newest
    buffered frame (up to 2 s, 80 frames, further)."""
    with Capture(_Ahead()) as cap:
        cap.read(timeout=2.0)
        t0 = time.monotonic()
        threading.Event().wait(1.0)  # the reader is busy elsewhere
        frame = cap.read(timeout=2.0)
        elapsed = time.monotonic() - t0
    assert frame.index <= elapsed * 40 + 4, (frame.index, elapsed)
