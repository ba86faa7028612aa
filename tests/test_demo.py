"""The demo scene: deterministic, sized, moving, and paced like a camera by default."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest

from eigencam_live.video import Capture, DemoSource, open_source


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
