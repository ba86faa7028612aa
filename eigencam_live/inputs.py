"""Frames -> the network's input: step 1 of the frame path (:mod:`eigencam_live.engine`).

One upload of the uint8 frames (pinned, non-blocking on CUDA), the whole frame resized (never
cropped) so that its short side is ``short_side`` and both sides are multiples of the network's
stride, BGR -> RGB (or the luma, for a grey network), normalised. Everything it depends on is one :class:`InputSpec`, so another
thread can prepare a batch (:class:`Prepared`) while the network runs the one before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .config import input_size

__all__ = ["InputSpec", "Prepared", "as_batch", "network_input", "prepare", "upload"]


class InputSpec(NamedTuple):
    """What the network's input depends on: replaced as a whole (under the engine's lock) whenever
    any of it changes, so a thread that prepares input without the lock reads one consistent set."""

    short_side: int
    fixed_input: tuple[int, int] | None
    mean: torch.Tensor  # (1, C, 1, 1), times 255: C = 3 (RGB), or 1 (grey: the frames' luma)
    inv_std: torch.Tensor
    device: torch.device
    dtype: torch.dtype
    key: tuple  # the same in plain values: equal keys, equal inputs
    luma: torch.Tensor | None = None  # (3,) BT.601 weights in B, G, R order on the device, for a grey network

    @classmethod
    def of(cls, short_side: int, fixed_input: tuple[int, int] | None, mean, std, device: torch.device,
           dtype: torch.dtype) -> InputSpec:
        """The spec for these settings (``mean``, ``std``: RGB, of ``[0, 1]`` pixels; one number
        each for a grey network)."""
        mean, std = tuple(mean), tuple(std)
        luma = torch.tensor([0.114, 0.587, 0.299], device=device) if len(mean) == 1 else None
        return cls(short_side, fixed_input, torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255.0,
                   1.0 / (torch.tensor(std, device=device).view(1, -1, 1, 1) * 255.0), device, dtype,
                   (short_side, fixed_input, mean, std, device, dtype), luma)


@dataclass(frozen=True)
class Prepared:
    """A batch made into the network's input by :meth:`~eigencam_live.engine.Engine.prepare`, ahead
    of :meth:`~eigencam_live.engine.Engine.submit` (in another thread, while the network runs the
    batch before it).

    Attributes:
        frames: ``(B, H, W, 3)`` uint8 BGR.
        on_device: the same frames on the engine's device.
        x: ``(B, 3, h, w)`` the network's input.
        seconds: what preparing took.
    """

    frames: np.ndarray
    on_device: torch.Tensor
    x: torch.Tensor
    seconds: float
    spec: InputSpec


def prepare(batch: np.ndarray, spec: InputSpec) -> Prepared:
    """A ``(B, H, W, 3)`` uint8 BGR batch (:func:`as_batch`) made into the network's input."""
    t0 = time.perf_counter()
    on_device = upload(batch, spec.device)
    x = network_input(on_device, spec)
    return Prepared(batch, on_device, x, time.perf_counter() - t0, spec)


def upload(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 frames on ``device`` (pinned and non-blocking on CUDA)."""
    host = torch.from_numpy(frames)
    if device.type != "cuda":
        return host
    # The caching host allocator recycles pinned blocks once their copies have completed.
    pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
    pinned.copy_(host)
    return pinned.to(device, non_blocking=True)


def network_input(frames: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 BGR on the device -> ``(B, C, h, w)`` normalised network input: RGB,
    or for a grey network (``C = 1``) the luma."""
    _, height, width, _ = frames.shape
    h, w = input_size(height, width, spec.short_side, spec.fixed_input)
    x = frames.permute(0, 3, 1, 2)  # a channels-last view
    if (h, w) != (height, width):
        # Antialiased bilinear (the counterpart of cv2.INTER_AREA when shrinking). On the CPU on
        # uint8 channels-last, torch's fastest kernel: 768x432 -> 384x224 in 0.45 ms, 4x faster
        # than cv2.INTER_AREA; CUDA has no uint8 kernel and works in float.
        x = x if x.is_cpu else x.float()
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=h < height or w < width, align_corners=False)
    if x.is_cpu:
        # channels-first before the arithmetic: on the CPU torch's elementwise kernels run 3x
        # slower on a channels-last uint8 view (0.68 against 0.24 ms a 224 x 384 frame, the
        # copy included), and ONNX Runtime takes NCHW memory anyway
        x = x.contiguous()
    if spec.luma is not None:  # grey: BT.601 luma, as cv2.COLOR_BGR2GRAY and Pillow's "L"
        x = torch.tensordot(spec.luma, x.float(), dims=([0], [1])).unsqueeze(1)
    else:
        x = x.flip(1).float()  # BGR -> RGB
    x = (x - spec.mean) * spec.inv_std
    if spec.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(spec.dtype)


def as_batch(frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """One ``(H, W, 3)`` frame, a ``(B, H, W, 3)`` array or a list of frames of one size -> a
    contiguous ``(B, H, W, 3)`` uint8 array; anything else raises ``ValueError`` saying what."""
    if isinstance(frames, list):
        if not frames:
            raise ValueError("frames must not be empty")
        if len(frames) == 1:  # said of the frame as given
            return as_batch(frames[0])
        for frame in frames:
            if not isinstance(frame, np.ndarray):
                as_batch(frame)  # (raises, saying what it is)
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise ValueError(f"frames of one batch must share one size. Got {sorted(shapes)}")
        frames = np.stack(frames)
    if frames is None:  # (cv2.imread's answer to a file it cannot read)
        raise ValueError("frames must be uint8 BGR numpy arrays. Got None: an image that was not read "
                         "(cv2.imread gives None for a missing or unreadable file)")
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 BGR numpy arrays. Got {getattr(frames, 'dtype', type(frames))}")
    given = frames.shape
    if frames.ndim == 2:
        raise ValueError(f"frames must have a shape of (H, W, 3) or (B, H, W, 3), BGR. Got {given}: a grey image "
                         "becomes one with cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim == 4 and frames.shape[0] == 0:
        raise ValueError("frames must not be empty")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[1] < 1 or frames.shape[2] < 1:
        hint = {1: ": a grey image becomes one with cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)",
                4: ": one with alpha (BGRA) becomes one without it as frames[..., :3]"}
        raise ValueError(f"frames must have a shape of (H, W, 3) or (B, H, W, 3), BGR. Got {given}"
                         f"{hint.get(frames.shape[3], '') if frames.ndim == 4 else ''}")
    return np.ascontiguousarray(frames)
