"""Colours between 4:2:0 YUV and BGR (eigencam_live.video.yuv): the matrix and range each frame is
in, rounding to nearest (no darkening), and each written chroma sample the mean of its 2x2 pixels."""

from __future__ import annotations

import av
import numpy as np
import pytest

from eigencam_live.video.yuv import bgr_to_i420, to_bgr

# Y, Cb, Cr rows of the RGB -> YCbCr matrices (Kr, Kb): BT.601 (0.299, 0.114), BT.709 (0.2126, 0.0722)
_K = {601: (0.299, 0.114), 709: (0.2126, 0.0722)}


def _to_yuv(rgb: np.ndarray, matrix: int, full: bool) -> np.ndarray:
    kr, kb = _K[matrix]
    r, g, b = (rgb[..., i].astype(np.float64) / 255 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    if full:
        return np.stack([255 * y, 128 + 255 * cb, 128 + 255 * cr], -1)
    return np.stack([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr], -1)


def _from_yuv(yuv: np.ndarray, matrix: int, full: bool) -> np.ndarray:
    """Exact float BGR of YUV values."""
    kr, kb = _K[matrix]
    y, cb, cr = (yuv[..., i].astype(np.float64) for i in range(3))
    y, cb, cr = ((y / 255, (cb - 128) / 255, (cr - 128) / 255) if full
                 else ((y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224))
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(255 * np.stack([b, g, r], -1), 0, 255)


def _blocks_frame(width: int, height: int, colours: np.ndarray, block: int = 32):
    """4:2:0 planes of ``block``-pixel squares, each one YUV colour (chroma is constant inside
    each square, so the conversion is compared away from how chroma is interpolated)."""
    rows, cols = -(-height // block), -(-width // block)
    pick = np.arange(rows * cols).reshape(rows, cols) % len(colours)
    full = colours[pick].repeat(block, 0).repeat(block, 1)[:height, :width]  # (H, W, 3)
    y = full[..., 0]
    u, v = full[::2, ::2, 1], full[::2, ::2, 2]
    planes = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(planes.astype(np.uint8)), format="yuv420p"), full


# black, white, grey, then random colours (those RGB cannot hold are clipped by both sides alike)
_COLOURS = np.concatenate([[[16, 128, 128], [235, 128, 128], [126, 128, 128]],
                           np.random.default_rng(0).integers([16, 16, 16], [236, 241, 241], (1000, 3))])


@pytest.mark.parametrize(("width", "height", "stated", "matrix", "full"), [
    (640, 360, 6, 601, False),     # SD, BT.601 stated: OpenCV's path
    (640, 360, 2, 601, False),     # SD, nothing stated: BT.601, as players read it
    (1280, 720, 2, 709, False),    # HD, nothing stated: BT.709, as players read it (FFmpeg took BT.601)
    (1280, 720, 1, 709, False),    # BT.709 stated
    (640, 360, 6, 601, True),      # full range
], ids=["sd-601", "sd-unstated", "hd-unstated", "hd-709", "full-range"])
def test_decoding_reads_the_matrix_and_range_and_rounds_to_nearest(width, height, stated, matrix, full):
    frame, yuv = _blocks_frame(width, height, _COLOURS, block=16)
    frame.colorspace, frame.color_range = stated, 2 if full else 1
    got = to_bgr(frame).astype(np.float64)
    want = _from_yuv(yuv, matrix, full)
    away = (np.arange(max(width, height)) % 16 >= 4) & (np.arange(max(width, height)) % 16 < 12)
    inside = away[:height, None] & away[None, :width]  # away from the squares' edges (chroma interpolation)
    error = got[inside] - want[inside]
    assert np.abs(error).max() <= 1.0  # rounded, not truncated: FFmpeg's default was 1-2 levels low
    assert np.abs(error.mean(axis=0)).max() < 0.1


def test_writing_gives_each_chroma_sample_the_mean_of_its_four_pixels():
    # Random pixels: every 2x2 block's four colours differ. OpenCV's BGR -> I420 took the top-left
    # pixel (errors over 100 levels here), FFmpeg's default rounded down (0.5 level low).
    rng = np.random.default_rng(0)
    for height, width in ((432, 768), (66, 98)):  # 66: the chroma planes' rows do not pair up
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        planes = bgr_to_i420(image).reshape(-1).astype(np.float64)
        exact = _to_yuv(image[..., ::-1], 601, full=False)
        means = exact.reshape(height // 2, 2, width // 2, 2, 3).mean(axis=(1, 3))
        quarter = (height // 2) * (width // 2)
        got = {"y": planes[: height * width], "u": planes[height * width:][:quarter], "v": planes[height * width:][quarter:]}
        want = {"y": exact[..., 0].ravel(), "u": means[..., 1].ravel(), "v": means[..., 2].ravel()}
        for name in "yuv":
            error = got[name] - want[name]
            assert np.abs(error).max() <= 1.0, name
            assert abs(error.mean()) < 0.05, name  # FFmpeg's: 0.5


def test_a_thin_coloured_line_keeps_its_colour_on_any_row():
    # A one-pixel red line on an odd row (a box edge, a label) shares its chroma samples with the
    # row above; it keeps half its colour, as the mean of the block, instead of losing it.
    image = np.full((64, 96, 3), 128, np.uint8)
    image[31] = (0, 0, 255)
    frame = av.VideoFrame.from_ndarray(bgr_to_i420(image), format="yuv420p")
    frame.colorspace, frame.color_range = 6, 1
    back = to_bgr(frame).astype(int)
    blended = (np.array([0, 0, 255]) + 128) / 2  # the block's mean colour
    assert back[31, 40, 2] - back[31, 40, 1] > 100  # still clearly red (was grey: [135, 68, 72] was teal-ish)
    assert np.abs(to_bgr(frame)[30:32].astype(float).mean(axis=(0, 1)) - blended).max() < 20


def test_a_matrix_ffmpeg_cannot_convert_is_read_as_an_unstated_one():
    # YCgCo (x264 --colormatrix YCgCo) has no swscale coefficients: FFmpeg's conversion raised,
    # and with it the file's reader. It is read as an unstated matrix instead (BT.709 for HD).
    frame, yuv = _blocks_frame(1280, 720, _COLOURS, block=16)
    frame.colorspace, frame.color_range = 8, 1
    with pytest.raises(OSError):
        frame.to_ndarray(format="bgr24")
    frame.colorspace = 2
    want = to_bgr(frame)
    frame.colorspace = 8
    np.testing.assert_array_equal(to_bgr(frame), want)
