"""The demos: the shipped clip (looping, paced, timestamps running on) and the synthetic scene
(deterministic, sized, moving, paced like a camera by default)."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from eigencam_live.video import DEMO_CLIP, Capture, DemoClip, DemoSource, open_source


def test_demo_scene_is_deterministic_sized_and_moving():
    a = open_source("scene", demo_size=(160, 120), demo_fps=25, realtime=False, demo_frames=5)
    b = DemoSource((160, 120), 25, realtime=False, frames=5)
    assert (a.info.width, a.info.height, a.info.rate, a.info.live) == (160, 120, Fraction(25), False)
    with Capture(a) as cap:
        frames = list(cap)
    assert len(frames) == 5 and frames[0].image.shape == (120, 160, 3)
    assert np.array_equal(frames[3].image, b.render(3))
    assert not np.array_equal(frames[0].image, frames[4].image)
    assert frames[4].pts == pytest.approx(4 / 25)


def test_demo_is_live_and_paced_by_default():
    src = open_source("scene", demo_size=(64, 48), demo_fps=50)
    assert src.info.live and src.info.kind == "demo"
    t0 = time.monotonic()
    for _ in range(6):
        src.read()
    assert time.monotonic() - t0 >= 0.08  # 5 intervals of 20 ms
    src.close()


def test_the_demo_clip_ships_with_the_package_and_loops_with_running_timestamps():
    assert DEMO_CLIP.is_file() and DEMO_CLIP.stat().st_size < 1_000_000
    clip = open_source("demo", realtime=False)
    assert isinstance(clip, DemoClip) and clip.info.kind == "demo"
    assert (clip.info.width, clip.info.height, clip.info.rate) == (640, 360, Fraction(179, 6))
    first = clip.read()
    pts = [first.pts]
    for _ in range(1188):  # the clip has 1189 frames: the next read starts it again
        pts.append(clip.read().pts)
    again = clip.read()
    clip.close()
    assert np.array_equal(again.image, first.image) and again.index == 1189
    steps = np.diff(pts + [again.pts])
    assert steps.min() > 0 and np.allclose(steps, 6 / 179, atol=1e-3)  # one frame apart, across the loop too


def test_the_demo_clip_is_paced_live_and_close_ends_a_wait():
    import threading

    clip = DemoClip()
    assert clip.info.live
    t0 = time.monotonic()
    for _ in range(4):
        clip.read()
    assert time.monotonic() - t0 >= 3 * 6 / 179 - 0.005  # three intervals of 33.5 ms
    clip._start += 60.0  # the next frame is a minute away...
    closer = threading.Timer(0.05, clip.close)
    closer.start()
    t1 = time.monotonic()
    assert clip.read() is None  # ...and close() ends the wait at once
    assert time.monotonic() - t1 < 2.0
    closer.join()


def test_a_held_demo_clip_waits_and_steps_one_frame_at_a_time():
    """Paused in the app, the demo clip stops where it is and → shows its next frame (it ran on
    like a camera: a step jumped seconds ahead). A camera is never held."""
    with Capture(DemoClip()) as cap:
        last = cap.read(timeout=5).index
        cap.hold(True)
        shown = []
        for _ in range(3):
            cap.step()
            shown.append(cap.read(timeout=5).index)
        with pytest.raises(TimeoutError):
            cap.read(timeout=0.4)  # held: nothing more comes (a 30 fps clip would have sent ~12)
        cap.hold(False)
        after = cap.read(timeout=5).index
        assert shown == [last + 1, last + 2, last + 3] and after == last + 4 and cap.dropped == 0

    scene = Capture(open_source("scene", demo_size=(64, 48), demo_fps=50))  # not holdable
    with scene:
        scene.hold(True)
        first = scene.read(timeout=5).index
        assert scene.read(timeout=5).index > first


def test_every_step_of_a_held_clip_gives_a_frame():
    """A step right after the reader took the frame in flight was lost (the capture thread had not
    yet said it was done reading): the app waited 2 s and showed nothing. Thread switches forced
    often, as on a busy machine."""
    import sys

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with Capture(DemoClip(realtime=False)) as cap:
            first = cap.read(timeout=5).index
            cap.hold(True)
            got = []
            for _ in range(100):
                cap.step()
                got.append(cap.read(timeout=5).index)
    finally:
        sys.setswitchinterval(before)
    assert got[0] in (first + 1, first + 2) and got == list(range(got[0], got[0] + 100))


def test_a_held_clip_gives_the_frames_buffered_when_it_was_paused_one_by_one():
    """Paused while the reader had not taken the newest frames (busy with the last one), the first
    step skipped one: both were due by then, and a live read keeps only the newest."""
    with Capture(DemoClip()) as cap:
        last = cap.read(timeout=5).index
        deadline = time.monotonic() + 5
        with cap._cond:  # the reader busy elsewhere: two frames come meanwhile, and both come due
            while time.monotonic() < deadline and not (
                    len(cap._buffer) >= 2 and cap._due(cap._buffer[1]) <= time.monotonic()):
                cap._cond.wait(0.01)
            cap.hold(True)
        assert [cap.read(timeout=5).index for _ in range(2)] == [last + 1, last + 2]


def test_a_held_clip_played_again_goes_on_from_the_first_frame_it_held():
    """A GUI trial: play after a pause on the demo clip skipped a frame. Back after a pause, the
    reader started the clip again from its newest buffered frame, as for a camera; a held clip
    goes on from where it stopped."""
    with Capture(DemoClip()) as cap:
        last = cap.read(timeout=5).index
        deadline = time.monotonic() + 5
        with cap._cond:  # two frames come, and come due, while the reader is busy; then the pause
            while time.monotonic() < deadline and not (
                    len(cap._buffer) >= 2 and cap._due(cap._buffer[1]) <= time.monotonic()):
                cap._cond.wait(0.01)
            cap.hold(True)
            cap._read_at -= 2.0  # paused for two seconds (longer than a reader's gap that restarts a camera)
        cap.hold(False)
        assert cap.read(timeout=5).index == last + 1 and cap.dropped == 0
        assert cap.read(timeout=5).index >= last + 2  # then at its own rate (a busy reader drops, as live)
