"""Renderer: layouts, blending, colormaps, the tensor twin, and bad settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from eigencam_live.errors import ConfigError
from eigencam_live.models.detectors import Detection
from eigencam_live.render import (
    COLORMAPS,
    VIEWS,
    RenderConfig,
    colorize,
    colormap_lut,
    draw_boxes,
    fitting_layout,
    picture_size,
    render,
    render_frames,
    render_tensor,
)

H, W = 48, 80


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def heat() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return ((xx / (W - 1)) * 0.7 + (yy / (H - 1)) * 0.3).astype(np.float32)  # covers [0, 1]


@pytest.mark.parametrize(("view", "shape"), [("overlay", (H, W, 3)), ("side-by-side", (H, 2 * W, 3)),
                                             ("stacked", (2 * H, W, 3)), ("heatmap", (H, W, 3)),
                                             ("original", (H, W, 3))])
def test_each_view_has_its_size(frame, heat, view, shape):
    out = render(frame, heat, view)
    assert out.shape == shape and out.dtype == np.uint8
    assert out is not frame and not np.shares_memory(out, frame)


def test_views_contents(frame, heat):
    np.testing.assert_array_equal(render(frame, heat, "original"), frame)
    np.testing.assert_array_equal(render(frame, None, "overlay"), frame)  # no map yet: the frame
    np.testing.assert_array_equal(render(frame, heat, "heatmap"), colorize(heat, "jet"))
    side = render(frame, heat, "side-by-side", alpha=0.4)
    np.testing.assert_array_equal(side[:, :W], frame)
    np.testing.assert_array_equal(side[:, W:], render(frame, heat, "overlay", alpha=0.4))
    stacked = render(frame, heat, "stacked", alpha=0.4)
    np.testing.assert_array_equal(stacked[:H], frame)
    np.testing.assert_array_equal(stacked[H:], side[:, W:])


@pytest.mark.parametrize("view", VIEWS)
def test_picture_size_is_what_render_draws(frame, heat, view):
    out = render(frame, heat, view)
    assert picture_size(view, W, H) == (out.shape[1], out.shape[0])
    assert picture_size(view, 1280, 720) == {"side-by-side": (2560, 720), "stacked": (1280, 1440)}.get(view, (1280, 720))


@pytest.mark.parametrize(("frame_size", "area", "want"), [
    ((1280, 720), (1000, 750), "stacked"),      # 16:9 in 4:3: panels 667 x 375 stacked, 500 x 281 beside
    ((1280, 720), (1000, 1000), "stacked"),     # a square area: stacked whenever w > h
    ((1280, 720), (1600, 900), "side-by-side"),  # the same aspect: a tie, each panel half; kept beside
    ((1280, 720), (2000, 500), "side-by-side"),
    ((640, 480), (1000, 1000), "stacked"),
    ((480, 640), (1000, 750), "side-by-side"),  # portrait
    ((500, 500), (1000, 1000), "side-by-side"),  # square in square: a tie
])
def test_fitting_layout_picks_the_larger_panels(frame_size, area, want):
    assert fitting_layout(frame_size, area) == want
    fw, fh = frame_size
    panel = {v: min(area[0] / picture_size(v, fw, fh)[0], area[1] / picture_size(v, fw, fh)[1]) * fw
             for v in ("side-by-side", "stacked")}
    assert panel[want] >= panel["side-by-side" if want == "stacked" else "stacked"]


def test_render_frames_stacks_on_both_routes(frame, heat):
    look = RenderConfig(view="stacked", alpha=0.3, colormap="turbo")
    frames, heats = torch.from_numpy(np.stack([frame, frame])), torch.from_numpy(np.stack([heat, heat]))
    cpu = render_frames(frames, heats, look)
    lut = render_tensor(frames, heats, "stacked", 0.3, "turbo")
    assert tuple(cpu.shape) == tuple(lut.shape) == (2, 2 * H, W, 3)
    np.testing.assert_array_equal(cpu[0, :H].numpy(), frame)
    assert np.abs(cpu.numpy().astype(np.int16) - lut.numpy().astype(np.int16)).max() <= 1


@pytest.mark.parametrize("view", ["overlay", "side-by-side", "stacked"])
def test_boxes_are_drawn_on_every_panel(view):
    fh, fw = 60, 100
    boxes = [Detection((20.0, 25.0, 70.0, 50.0), "cat", 0.91), Detection((5.0, 2.0, 30.0, 58.0), "dog", 0.5)]
    single = draw_boxes(np.zeros((fh, fw, 3), np.uint8), boxes, fw, fh)
    cols, rows = picture_size(view, fw, fh)[0] // fw, picture_size(view, fw, fh)[1] // fh
    picture = draw_boxes(np.zeros((rows * fh, cols * fw, 3), np.uint8), boxes, fw, fh)
    assert (single.min(axis=2) > 200).sum() > 150  # white lines and text
    for r in range(rows):
        for c in range(cols):
            np.testing.assert_array_equal(picture[r * fh:(r + 1) * fh, c * fw:(c + 1) * fw], single)


def test_boxes_and_tags_grow_with_the_frame():
    """A 4K frame's tag was drawn as at 640x360: 12 pixels tall, a smudge once the picture is fitted
    to a screen (a trial). Its tag and lines grow with the frame, in the same proportion."""
    def tag_and_line(h: int, w: int) -> tuple[int, int]:
        k = w / 640
        box = Detection((100 * k, 100 * k, 300 * k, 250 * k), "bottle", 0.9)
        picture = draw_boxes(np.zeros((h, w, 3), np.uint8), [box], w, h)
        tag = picture[: round(100 * k) - 1, round(100 * k): round(300 * k)].min(axis=2)  # above the box's top line
        white = np.flatnonzero((tag > 200).any(axis=1))  # the rows of the tag's text
        line = int(np.sum(picture[round(175 * k), :, :].min(axis=1) > 200))  # a row across the box: two sides
        return int(white.max() - white.min() + 1) if len(white) else 0, line

    (small_tag, small_line), (big_tag, big_line) = tag_and_line(360, 640), tag_and_line(2160, 3840)
    assert small_line >= 2 and big_line >= 4 * small_line  # 5x the frame's size
    assert 4 * small_tag <= big_tag <= 8 * small_tag, (small_tag, big_tag)  # (its strokes thicker too)


def test_a_tag_at_the_frames_right_edge_is_moved_inside_it():
    """A box at the right edge had its tag cut off there ("hair drier (", a trial)."""
    box = Detection((600.0, 100.0, 639.0, 200.0), "hair drier", 0.91)
    mid = Detection((300.0, 100.0, 339.0, 200.0), "hair drier", 0.91)  # room to the right: the whole tag
    tag = draw_boxes(np.zeros((360, 640, 3), np.uint8), [mid], 640)[:96].min(axis=2) > 200
    width = np.ptp(np.flatnonzero(tag.any(axis=0))) + 1
    picture = draw_boxes(np.zeros((360, 640, 3), np.uint8), [box], 640)
    cols = np.flatnonzero((picture[:96].min(axis=2) > 200).any(axis=0))
    assert cols.max() < 640 and np.ptp(cols) + 1 == width  # the whole tag, ending inside the frame


def test_alpha_zero_is_the_frame_and_one_is_the_colormap(frame, heat):
    for cmap in ("jet", "inferno"):
        np.testing.assert_array_equal(render(frame, heat, "overlay", 0.0, cmap), frame)
        np.testing.assert_array_equal(render(frame, heat, "overlay", 1.0, cmap), colorize(heat, cmap))
    half = render(frame, heat, "overlay", 0.5).astype(np.int32)
    want = (frame.astype(np.float64) + colorize(heat).astype(np.float64)) / 2
    assert np.abs(half - want).max() <= 1


def test_colormap_levels(heat):
    lut = colormap_lut("jet")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8 and not lut.flags.writeable
    np.testing.assert_array_equal(lut[[0, 255]], [[128, 0, 0], [0, 0, 128]])  # jet: dark blue .. dark red (BGR)
    ramp = np.linspace(0, 1, 256, dtype=np.float32)[None, :]
    np.testing.assert_array_equal(colorize(ramp, "jet")[0], lut)
    # beyond [0, 1] the end colours, however far (NaN counts as 0)
    wild = np.array([[-1e30, -0.5, np.nan, 1.5, 1e7, 1e30, np.inf, -np.inf]], dtype=np.float32)
    np.testing.assert_array_equal(colorize(wild, "jet")[0], lut[[0, 0, 0, 255, 255, 255, 255, 0]])
    # a map known to lie in [0, 1] (the engine's) skips the clamp, and gets the same levels
    np.testing.assert_array_equal(colorize(ramp, "jet", in_range=True)[0], lut)
    for name in COLORMAPS:
        want = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], COLORMAPS[name])[:, 0]
        np.testing.assert_array_equal(colormap_lut(name), want)
        np.testing.assert_array_equal(colorize(ramp, name)[0], want)  # through the table: OpenCV's own colours


def test_a_map_in_range_is_drawn_alike_without_the_clamp(frame, heat):
    assert heat.min() == 0.0 and heat.max() == 1.0
    for view in ("overlay", "heatmap", "side-by-side"):
        np.testing.assert_array_equal(render(frame, heat, view, 0.3, "inferno", in_range=True),
                                      render(frame, heat, view, 0.3, "inferno"))


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("cmap", ["jet", "turbo", "viridis"])
def test_render_tensor_equals_render(frame, heat, view, cmap):
    frames = torch.from_numpy(np.stack([frame, frame[::-1].copy()]))
    heats = torch.from_numpy(np.stack([heat, 1.0 - heat]))
    out = render_tensor(frames, heats, view, 0.35, cmap)
    assert out.dtype == torch.uint8
    for i in range(2):
        want = render(frames[i].numpy(), heats[i].numpy(), view, 0.35, cmap)
        assert tuple(out[i].shape) == want.shape
        assert np.abs(out[i].numpy().astype(np.int16) - want.astype(np.int16)).max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"view": "blend"}, "view"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": "0.5"}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"colormap": "rainbow"}, "colormap"),
    ],
)
def test_bad_values_raise_config_error(frame, heat, kwargs, field):
    for call in (
        lambda: render(frame, heat, **kwargs),
        lambda: render_tensor(torch.from_numpy(frame[None]), torch.from_numpy(heat[None]), **kwargs),
        lambda: RenderConfig(**kwargs),
    ):
        with pytest.raises(ConfigError, match=field):
            call()


def test_bad_arrays_are_refused(frame, heat):
    with pytest.raises(ValueError, match="heatmap"):
        render(frame, heat[:, :-1])
    with pytest.raises(ValueError, match="frame"):
        render(frame.astype(np.float32), heat)
    with pytest.raises(ValueError, match="frame"):
        render(frame[..., 0], heat)


def test_out_of_range_heat_is_clipped(frame):
    wild = np.full((H, W), 7.0, np.float32)
    wild[:, : W // 2] = -3.0
    out = render(frame, wild, "heatmap")
    lut = colormap_lut("jet")
    np.testing.assert_array_equal(out[0, 0], lut[0])
    np.testing.assert_array_equal(out[0, -1], lut[255])


def test_nan_heat_shows_as_zero_in_both_renderers(frame):
    heat = np.full((H, W), np.nan, np.float32)
    heat[:, W // 2 :] = 1.0
    a = render(frame, heat, "heatmap")
    b = render_tensor(torch.from_numpy(frame[None]), torch.from_numpy(heat[None]), "heatmap")[0].numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0, 0], colormap_lut("jet")[0])
