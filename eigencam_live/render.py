"""Drawing: colormaps, blending and layouts. One function, :func:`render`, for every front end.

Frames are uint8 BGR ``(H, W, 3)`` (OpenCV's convention); heatmaps are float ``(H, W)`` in
``[0, 1]`` aligned with the frame's pixels. :func:`render_tensor` does the same on torch tensors
(any device), so a GPU pipeline never leaves the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import torch

from .errors import ConfigError, plain_numbers

__all__ = ["COLORMAPS", "TWO_PANEL_VIEWS", "VIEWS", "RenderConfig", "colorize", "colormap_lut", "draw_boxes",
           "fitting_layout", "maps_in_boxes", "picture_size", "render", "render_frames", "render_tensor"]

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
}
#: ``overlay``: heatmap blended over the frame; ``side-by-side``: frame | overlay; ``stacked``: the
#: frame above the overlay (the larger picture for a wide frame on a screen); ``heatmap``: the
#: coloured map alone; ``original``: the frame untouched.
VIEWS = ("overlay", "side-by-side", "stacked", "heatmap", "original")
#: The views of two panels, the frame and the overlay: :func:`fitting_layout` picks between them.
TWO_PANEL_VIEWS = ("side-by-side", "stacked")


def picture_size(view: str, width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of the picture that :func:`render` draws in ``view`` for a ``width`` x
    ``height`` frame: twice as wide side by side, twice as tall stacked, else the frame's."""
    _check(view, 0.5, "jet")
    if view == "side-by-side":
        return 2 * width, height
    if view == "stacked":
        return width, 2 * height
    return width, height


def fitting_layout(frame_size: tuple[int, int], area_size: tuple[int, int]) -> str:
    """The two-panel view (``side-by-side`` or ``stacked``) whose panels come out larger when the
    picture is scaled to fit an area, aspect kept. Sizes are ``(width, height)``; a tie (the frame's
    aspect equal to the area's) keeps ``side-by-side``.

    Stacked wins exactly when the frame's aspect (w / h) exceeds the area's: a 16:9 frame in a 4:3
    area gets panels 1.5x as wide stacked (in a 16:9 area the two tie, each panel half the area's
    height or width). Without an area (a file), ``stacked`` for a frame wider than tall is the
    same rule for a square area."""
    fw, fh = (max(1, int(v)) for v in frame_size)
    aw, ah = (max(1, int(v)) for v in area_size)
    beside = min(aw / (2 * fw), ah / fh)  # the scale of each panel, frame | overlay
    above = min(aw / fw, ah / (2 * fh))
    return "stacked" if above > beside * (1 + 1e-9) else "side-by-side"


@dataclass(frozen=True)
class RenderConfig:
    """How a heatmap is drawn. ``alpha`` is the heatmap's opacity in ``[0, 1]``.

    For a detector: ``boxes`` draws its boxes with class and score; ``in_boxes`` renormalises the map
    inside each box (min-max per box, zero outside) instead of showing the plain map.
    """

    view: str = "overlay"
    alpha: float = 0.5
    colormap: str = "jet"
    boxes: bool = True
    in_boxes: bool = False

    def __post_init__(self) -> None:
        plain_numbers(self, reals=("alpha",))
        _check(self.view, self.alpha, self.colormap)
        for name in ("boxes", "in_boxes"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"must be True or False. Got {getattr(self, name)!r}", field=name)


def _check(view: str, alpha: float, colormap: str) -> None:
    if view not in VIEWS:
        raise ConfigError(f"must be one of {', '.join(VIEWS)}. Got {view!r}", field="view")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"must be a number in [0, 1]. Got {alpha!r}", field="alpha")
    if colormap not in COLORMAPS:
        raise ConfigError(f"must be one of {', '.join(COLORMAPS)}. Got {colormap!r}", field="colormap")


@cache
def colormap_lut(colormap: str) -> np.ndarray:
    """``(256, 3)`` uint8 BGR lookup table of a named colormap."""
    _check("overlay", 0.5, colormap)
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    lut = cv2.applyColorMap(ramp, COLORMAPS[colormap]).reshape(256, 3)
    lut.setflags(write=False)
    return lut


def colorize(heatmap: np.ndarray, colormap: str = "jet", *, in_range: bool = False) -> np.ndarray:
    """``(H, W)`` float in ``[0, 1]`` -> ``(H, W, 3)`` uint8 BGR. Values beyond ``[0, 1]`` land on
    the end colours and NaN on the first, unless ``in_range`` says the map holds none (as the
    engine's maps, :func:`~eigencam_live.results.maps_on_frames`): then the clamp is skipped."""
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must have a shape of (H, W). Got {heatmap.shape}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if not in_range:
        # Clamp to [0, 1] (NaN -> 0): convertScaleAbs alone would mirror negatives, and wraps
        # above ~8e6. Two thresholds: 0.15 ms on a 768 x 432 map (cv2.max/cv2.min with a scalar
        # took 1.8 ms), the second in place on the first's copy; a map already in range needs
        # neither (0.3 to 0.9 ms a frame in the engine's loop). NaN is patched by name between
        # them: OpenCV 5's thresholds keep it, or truncate it to 1 where they run in SIMD lanes.
        heatmap = cv2.threshold(heatmap, 0.0, 0.0, cv2.THRESH_TOZERO)[1]
        cv2.patchNaNs(heatmap, 0.0)
        cv2.threshold(heatmap, 1.0, 1.0, cv2.THRESH_TRUNC, dst=heatmap)
    # scale, round and saturate to uint8; then the table (OpenCV builds a named colormap's own table on
    # every call: 0.55 against 0.35 ms on a 768 x 432 map, the same pixels)
    return cv2.applyColorMap(cv2.convertScaleAbs(heatmap, alpha=255.0), colormap_lut(colormap)[:, None])


def render(
    frame: np.ndarray,
    heatmap: np.ndarray | None,
    view: str = "overlay",
    alpha: float = 0.5,
    colormap: str = "jet",
    *,
    in_range: bool = False,
) -> np.ndarray:
    """Draw ``heatmap`` on ``frame`` in the chosen layout.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR.
        heatmap: ``(H, W)`` float in ``[0, 1]``, aligned with ``frame``; ``None`` shows the frame.
        view: one of :data:`VIEWS`.
        alpha: heatmap opacity in ``[0, 1]``.
        colormap: a key of :data:`COLORMAPS`.
        in_range: the heatmap is known to hold values in ``[0, 1]`` only (see :func:`colorize`).

    Returns:
        ``(H, W, 3)`` uint8 BGR, or ``(H, 2W, 3)`` for ``side-by-side`` and ``(2H, W, 3)`` for
        ``stacked`` (:func:`picture_size`). Always a new array.
    """
    _check(view, alpha, colormap)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 with a shape of (H, W, 3). Got {frame.dtype} {frame.shape}")
    if view == "original" or heatmap is None:
        return frame.copy()
    if heatmap.shape != frame.shape[:2]:
        raise ValueError(f"heatmap must have the frame's size {frame.shape[:2]}. Got {heatmap.shape}")
    color = colorize(heatmap, colormap, in_range=in_range)
    if view == "heatmap":
        return color
    blended = cv2.addWeighted(frame, 1.0 - float(alpha), color, float(alpha), 0.0)
    if view == "overlay":
        return blended
    return np.concatenate([frame, blended], axis=0 if view == "stacked" else 1)


_LUT_CACHE: dict[tuple[str, torch.device], torch.Tensor] = {}


def _lut_tensor(colormap: str, device: torch.device) -> torch.Tensor:
    key = (colormap, device)
    lut = _LUT_CACHE.get(key)
    if lut is None:
        lut = torch.from_numpy(colormap_lut(colormap).copy()).to(device=device, dtype=torch.float32)
        _LUT_CACHE[key] = lut
    return lut


def render_tensor(
    frames: torch.Tensor,
    heatmaps: torch.Tensor,
    view: str = "overlay",
    alpha: float = 0.5,
    colormap: str = "jet",
) -> torch.Tensor:
    """:func:`render` on tensors, batched, on the tensors' device (a colormap lookup table there).

    Args:
        frames: ``(B, H, W, 3)`` uint8 BGR.
        heatmaps: ``(B, H, W)`` float in ``[0, 1]``.

    Returns:
        ``(B, H, W, 3)`` uint8 BGR (``(B, H, 2W, 3)`` for ``side-by-side``, ``(B, 2H, W, 3)`` for
        ``stacked``).
    """
    _check(view, alpha, colormap)
    if view == "original":
        return frames.clone()
    # round() is half-to-even like OpenCV's saturate_cast in colorize(): the same level either way.
    # NaN would become an out-of-range index: it shows as 0, as in colorize().
    idx = (heatmaps.float().nan_to_num(0.0).clamp_(0, 1) * 255.0).round_().to(torch.long)
    color = _lut_tensor(colormap, frames.device)[idx]  # (B, H, W, 3) float
    if view == "heatmap":
        return color.to(torch.uint8)
    a = float(alpha)
    blended = (frames.float() * (1.0 - a) + color * a + 0.5).clamp_(0, 255).to(torch.uint8)
    if view == "overlay":
        return blended
    return torch.cat([frames, blended], dim=1 if view == "stacked" else 2)


def render_frames(frames: torch.Tensor, heatmaps: torch.Tensor, look: RenderConfig) -> torch.Tensor:
    """A batch drawn on the tensors' device: OpenCV (:func:`render`) for CPU tensors, the lookup
    table (:func:`render_tensor`) elsewhere; both give the same pictures.

    Args:
        frames: ``(B, H, W, 3)`` uint8 BGR.
        heatmaps: ``(B, H, W)`` float in ``[0, 1]`` (:func:`~eigencam_live.results.maps_on_frames`,
            :func:`maps_in_boxes`): the clamp of :func:`colorize` is skipped.

    Returns:
        ``(B, H, W, 3)`` uint8 BGR (``(B, H, 2W, 3)`` for ``side-by-side``, ``(B, 2H, W, 3)`` for
        ``stacked``).
    """
    if frames.is_cpu:
        out = None  # each picture put in its place as it is drawn (a list then a stack held two copies)
        for i, (f, h) in enumerate(zip(frames.numpy(), heatmaps.numpy(), strict=True)):
            drawn = render(f, h, look.view, look.alpha, look.colormap, in_range=True)
            if len(frames) == 1:
                return torch.from_numpy(drawn[None])  # one frame: no copy
            if out is None:
                out = np.empty((len(frames), *drawn.shape), np.uint8)
            out[i] = drawn
        return torch.from_numpy(out)
    return render_tensor(frames, heatmaps, look.view, look.alpha, look.colormap)


def maps_in_boxes(heatmap: torch.Tensor, boxes: list) -> torch.Tensor:
    """``(H, W)`` map in ``[0, 1]`` -> the map min-max renormalised inside each box (the
    ``(x0, y0, x1, y1)`` frame-pixel boxes of :class:`~eigencam_live.models.Detection` objects),
    zero outside them; where boxes overlap, the larger value. Any device."""
    out = torch.zeros_like(heatmap)
    height, width = heatmap.shape
    for det in boxes:
        x0, y0, x1, y1 = det.box
        c0, r0 = max(0, int(x0)), max(0, int(y0))
        c1, r1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
        if c1 <= c0 or r1 <= r0:
            continue
        region = heatmap[r0:r1, c0:c1]
        lo, hi = region.min(), region.max()
        scaled = (region - lo) / (hi - lo).clamp_min(1e-12)
        out[r0:r1, c0:c1] = torch.maximum(out[r0:r1, c0:c1], scaled)
    return out


#: Box colours: a white frame with a dark outline and white text on a dark tag stay readable over
#: any colormap and any picture.
_LIGHT, _DARK = (255, 255, 255), (20, 20, 20)


def draw_boxes(picture: np.ndarray, boxes: list, frame_width: int, frame_height: int | None = None) -> np.ndarray:
    """Draw detections (``(x0, y0, x1, y1)`` boxes in frame pixels, with label and score) on a
    rendered picture, in place, on every panel of ``frame_width`` x ``frame_height`` (side by side
    or stacked: both; ``frame_height`` ``None``: the picture's height, one row of panels). Each
    panel is drawn within its own edges: nothing spills into its neighbour."""
    height = picture.shape[0] if frame_height is None else int(frame_height)
    for oy in range(0, picture.shape[0], height):
        for ox in range(0, picture.shape[1], frame_width):
            _draw_panel(picture[oy : oy + height, ox : ox + frame_width], boxes)  # a view: drawn in place
    return picture


def _draw_panel(panel: np.ndarray, boxes: list) -> None:
    """Dark outlines first, then the tags, then the white lines, so that where boxes overlap every
    box's line stays whole and white. A Mask R-CNN mask is drawn faintly first (lightened by a third).
    Lines and tags grow with the frame (as they are drawn at 640x360 from about 1200 pixels of
    height plus width): on a 4K frame, fitted to a screen or a window, a tag of fixed size was a
    smudge of three pixels (a trial)."""
    height, width = panel.shape[:2]
    grow = max(1.0, (height + width) / 1200)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * grow, max(1, round(grow))
    outline, pad = max(3, round(3 * grow)), round(2 * grow)
    for det in boxes:
        mask = getattr(det, "mask", None)
        if mask is not None and mask.shape == panel.shape[:2] and mask.any():
            panel[mask] = (panel[mask] * (2 / 3) + 255 / 3).astype(np.uint8)
    rects = [(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))) for (x0, y0, x1, y1), *_ in boxes]
    for x0, y0, x1, y1 in rects:
        cv2.rectangle(panel, (x0, y0), (x1, y1), _DARK, outline, cv2.LINE_AA)
    for (x0, y0, _, y1), det in zip(rects, boxes, strict=True):
        text = f"{det.label} {det.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        ty = y0 - outline if y0 - th - base - 2 * pad >= 0 else min(height - 1, y1 + th + 2 * pad)  # above, else below
        x0 = max(0, min(x0, width - tw - 2 * pad))  # inside the panel (a box at its right edge: "hair drier (", a trial)
        cv2.rectangle(panel, (x0, ty - th - pad - 1), (x0 + tw + 2 * pad, ty + base - 1), _DARK, -1)
        cv2.putText(panel, text, (x0 + pad, ty - 1), font, scale, _LIGHT, thick, cv2.LINE_AA)
    for x0, y0, x1, y1 in rects:
        cv2.rectangle(panel, (x0, y0), (x1, y1), _LIGHT, thick, cv2.LINE_AA)
