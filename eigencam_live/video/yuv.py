"""Colours between H.264's 4:2:0 YUV and the BGR frames everything else works on, both ways.

Decoding (:func:`to_bgr`) reads the colour matrix and range a frame states; an HD frame that states
none is BT.709, an SD one BT.601, as players read them (FFmpeg's own conversion takes BT.601 for
all). Writing (:func:`bgr_to_i420`) is BT.601, limited range, and :class:`~.sink.VideoSink` tags
the file so. Both round to nearest: FFmpeg's default conversions rounded down, so every decoded
frame came out darker (1.0 level in blue and red, 1.5 in green) and every written one 0.5 level
lower in Y, U and V, an annotate pass adding the two.

Chroma: a written sample is the mean of its 2x2 pixels; the common decoded case (BT.601, limited
range, even sides) repeats each sample over its 2x2 pixels, so such a frame written again keeps
its chroma. Other frames go through FFmpeg's swscale (PyAV 18's flags) with exact rounding and its
bilinear chroma (sited as the stream says), which writing then averages; a matrix swscale does
not know (YCgCo) is read as an unstated one.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

__all__ = ["BT601", "LIMITED", "bgr_to_i420", "colour_note", "colour_tags", "matrix_of", "to_bgr"]

#: FFmpeg's ``AVCOL_SPC_SMPTE170M`` (BT.601) and ``AVCOL_RANGE_MPEG`` (limited range): what
#: :func:`bgr_to_i420` writes.
BT601, LIMITED = 6, 1
_BT709, _UNSTATED = 1, 2
_BT601_MATRICES = (5, 6)  # bt470bg, smpte170m: the same matrix
#: Frames taller than this (or 1280 wide and more) that state no colour matrix are HD: BT.709.
_SD_HEIGHT = 576
# Limited-range chroma from full-range Cb/Cr as OpenCV computes them for float images (0.5 at grey):
# U = 128 + 224/255 (Cb - 0.5).
_CHROMA_SCALE = 224.0 / 255.0
_CHROMA_OFFSET = 128.0 - 0.5 * _CHROMA_SCALE


def matrix_of(frame) -> int:
    """The colour matrix a decoded frame is in (FFmpeg's ``AVColorSpace``): the one it states, else
    BT.709 for HD (more than 576 lines, or 1280 pixels wide and more) and BT.601 below."""
    return frame.colorspace if frame.colorspace != _UNSTATED else _by_size(frame)


def _by_size(frame) -> int:
    """The matrix players take for a frame that states none: BT.709 for HD, BT.601 below."""
    return _BT709 if frame.height > _SD_HEIGHT or frame.width >= 1280 else BT601


def to_bgr(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded PyAV frame as ``(height, width, 3)`` uint8 BGR, in its colour matrix
    (:func:`matrix_of`) and range, rounded to nearest. ``size``: ``(width, height)`` to scale to.

    BT.601 limited-range 4:2:0 with even sides (SD video, and what :class:`~.sink.VideoSink`
    writes) is converted by OpenCV, 0.1 ms at 768x432; the rest by swscale with exact rounding,
    its slow path: 1 ms at 768x432, 7.8 at 1920x1080 (BT.709; FFmpeg's biased default took 0.9),
    so an HD BT.709 file decodes at ~125 frames/s here instead of ~430.
    """
    import av.video.reformatter as reformatter

    matrix = matrix_of(frame)
    if (size is None and frame.format.name == "yuv420p" and matrix in _BT601_MATRICES
            and frame.color_range in (0, LIMITED) and not frame.width % 2 and not frame.height % 2):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    flags = reformatter.Interpolation.BILINEAR | reformatter.Interpolation.ACCURATE_RND | reformatter.Interpolation.FULL_CHR_H_INT
    width, height = size if size is not None else (None, None)
    guess = "ITU709" if _by_size(frame) == _BT709 else "ITU601"  # swscale's names
    try:
        return frame.reformat(width=width, height=height, format="bgr24", interpolation=flags,
                              src_colorspace=guess if frame.colorspace == _UNSTATED else None).to_ndarray()
    except OSError:  # a matrix swscale has no coefficients for (YCgCo, reserved values): as if unstated
        return frame.reformat(width=width, height=height, format="bgr24", interpolation=flags,
                              src_colorspace=guess).to_ndarray()


def bgr_to_i420(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR (even sides) as I420 planes, ``(H * 3 // 2, W)`` uint8: BT.601,
    limited range, each chroma sample the colour of the mean of its 2x2 pixels, rounded to nearest
    (within one level of the exact values). 0.33 ms at 768x432, 2.6 at 1920x1080 (swscale: 0.97
    and 4.3, biased); OpenCV's own BGR -> I420 takes each block's top-left pixel for its chroma,
    so a one-pixel line of colour on an odd row or column lost its colour."""
    h, w = image.shape[:2]
    image = np.ascontiguousarray(image)
    planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # its Y; chroma replaced below
    means = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    ycrcb = cv2.cvtColor(means, cv2.COLOR_BGR2YCrCb)  # exact, full range, 0.5 at grey
    chroma = planes.reshape(-1)[h * w:]
    quarter = (h // 2) * (w // 2)
    chroma[:quarter] = cv2.convertScaleAbs(ycrcb[..., 2], alpha=_CHROMA_SCALE, beta=_CHROMA_OFFSET).reshape(-1)
    chroma[quarter:] = cv2.convertScaleAbs(ycrcb[..., 1], alpha=_CHROMA_SCALE, beta=_CHROMA_OFFSET).reshape(-1)
    return planes


#: FFmpeg's codes for BT.2020 primaries, and for the PQ (SMPTE 2084) and HLG transfers.
_BT2020, _HDR_TRANSFERS = 9, {16: "PQ", 18: "HLG"}


def colour_tags(frame) -> tuple[int, int] | None:
    """``(color_primaries, color_trc)`` of a decoded SDR frame that states both: the RGB an output
    written through :func:`to_bgr` and :func:`bgr_to_i420` keeps is in those primaries and that
    transfer (only the matrix changes, to BT.601), so the output says so too. ``None`` for HDR or
    BT.2020 (written as SDR: see :func:`colour_note`) and where they are unstated."""
    primaries, trc = getattr(frame, "color_primaries", _UNSTATED), getattr(frame, "color_trc", _UNSTATED)
    if _UNSTATED in (primaries, trc) or 0 in (primaries, trc) or trc in _HDR_TRANSFERS or primaries == _BT2020:
        return None
    return primaries, trc


def colour_note(frame) -> str | None:
    """Set for a decoded frame that an 8-bit, progressive SDR BT.601 output cannot show as it is:
    HDR (PQ, HLG) or BT.2020's wide gamut (written without tone mapping or gamut conversion), more
    than 8 bits per channel, interlaced fields (written as progressive frames)."""
    notes = []
    hdr = _HDR_TRANSFERS.get(getattr(frame, "color_trc", None))
    if hdr:
        notes.append(f"HDR ({hdr}) video is written as SDR without tone mapping: its colours come out flat and "
                     "washed out")
    elif getattr(frame, "color_primaries", None) == _BT2020:
        notes.append("wide-gamut (BT.2020) video is written without converting its gamut to SDR's: its colours "
                     "come out less saturated")
    depth = re.search(r"p(9|1[0-6])(le|be)$", getattr(getattr(frame, "format", None), "name", "") or "")
    if depth:
        notes.append(f"{depth[1]}-bit video is written with 8 bits per channel")
    if getattr(frame, "interlaced_frame", False):
        notes.append("interlaced video is written as progressive frames, not deinterlaced (combs show on motion)")
    return "; ".join(notes) or None
