"""Frames to finished frames with everything on the engine's device (the GPU fast path).

One upload of the uint8 frames (pinned host memory, non-blocking copy); resize, normalisation, the
model, the Eigen-CAM decomposition (sync-free on CUDA), the map's resize to the frame, the colormap
lookup and the blend all run on the device; one download of the finished frames plus a few numbers
per frame, then one wait on a CUDA event. Nothing else in the loop waits for the GPU, so the host is
free to decode and encode while it works (``torch.cuda.set_sync_debug_mode("error")`` passes around
:meth:`DevicePipeline.submit` once a first batch has uploaded the colormap table and the solver's
index tensors, and cuDNN has picked its kernels).

On the CPU the same code runs (no pinning, no events); :class:`~eigencam_live.engine.Engine`'s
numpy path is the faster choice there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .engine import Engine, label_predictions, peak_pixel
from .render import RenderConfig, render_tensor

__all__ = ["DevicePipeline", "FrameStats", "PendingBatch"]


@dataclass
class FrameStats:
    """Per-frame numbers that come back with a finished frame.

    Attributes:
        predictions: top-k ``(label, probability)``, most likely first.
        explained: ``(K,)`` explained variance of the leading components.
        component: the 1-based component shown.
        peak: ``(x, y)`` frame pixel at the centre of the map's hottest feature cell.
        cam: ``(h, w)`` float16 map at feature resolution, or ``None`` when not requested.
    """

    predictions: list[tuple[str, float]]
    explained: np.ndarray
    component: int
    peak: tuple[int, int]
    cam: np.ndarray | None = None

    @property
    def explained_component(self) -> float:
        k = self.component - 1
        return float(self.explained[k]) if k < len(self.explained) else 0.0


class PendingBatch:
    """A batch in flight on the device. :meth:`result` waits for it (the loop's only sync)."""

    def __init__(self, frames: torch.Tensor, numbers: torch.Tensor, cams: torch.Tensor | None,
                 event: torch.cuda.Event | None, labels: list[str], k: int, component: int,
                 cam_shape: tuple[int, int], frame_shape: tuple[int, int]):
        self._frames, self._numbers, self._cams, self._event = frames, numbers, cams, event
        self._labels, self._k, self._component = labels, k, component
        self._cam_shape, self._frame_shape = cam_shape, frame_shape

    def result(self) -> tuple[np.ndarray, list[FrameStats]]:
        """``(B, H, W', 3)`` uint8 BGR finished frames and one :class:`FrameStats` per frame."""
        if self._event is not None:
            self._event.synchronize()
        frames = self._frames.numpy()
        numbers = self._numbers.numpy()
        cams = self._cams.numpy() if self._cams is not None else None
        k, stats = self._k, []
        for i, row in enumerate(numbers):
            probs, idx = row[:k], row[k : 2 * k].astype(np.int64)
            peak = int(row[2 * k])
            explained = row[2 * k + 1 :].astype(np.float32)
            preds = label_predictions(self._labels, idx, probs)
            stats.append(FrameStats(preds, explained, self._component, peak_pixel(peak, self._cam_shape, self._frame_shape),
                                    None if cams is None else cams[i]))
        return frames, stats


class DevicePipeline:
    """Upload, infer, render and download batches of frames on the engine's device.

    Args:
        engine: the engine (its device and precision decide where everything runs).
        render: how the heatmap is drawn.
        keep_cams: also bring back the low-resolution maps (float16), e.g. for ``--heatmaps``.
    """

    def __init__(self, engine: Engine, render: RenderConfig | None = None, *, keep_cams: bool = False) -> None:
        self.engine = engine
        self.render = render or RenderConfig()
        self.keep_cams = keep_cams

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def _upload(self, frames: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(frames))
        if self.device.type != "cuda":
            return host
        # The caching host allocator recycles pinned blocks once their copies have completed.
        pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
        pinned.copy_(host)
        return pinned.to(self.device, non_blocking=True)

    def _download(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return t.contiguous()
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        host.copy_(t, non_blocking=True)
        return host

    def submit(self, frames: np.ndarray) -> PendingBatch:
        """Queue a batch ``(B, H, W, 3)`` (or one ``(H, W, 3)`` frame) of uint8 BGR; returns at once
        on CUDA. Frames are taken as consecutive video frames."""
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 with a shape of (B, H, W, 3). Got {frames.dtype} {frames.shape}")
        engine, rc = self.engine, self.render
        b, height, width, _ = frames.shape
        dev_frames = self._upload(frames)
        res = engine.infer_device(dev_frames)
        with torch.inference_mode():
            out = render_tensor(dev_frames, res.heatmaps, rc.view, rc.alpha, rc.colormap)
            peak = res.cams.reshape(b, -1).argmax(dim=1)
            # One small float32 block per frame: top-k probabilities, top-k indices, peak, spectrum.
            numbers = torch.cat(
                [res.top_p.float(), res.top_i.float(), peak[:, None].float(), res.explained.float()], dim=1
            )
            host_frames = self._download(out)
            host_numbers = self._download(numbers)
            host_cams = self._download(res.cams.half()) if self.keep_cams else None
        event = None
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        return PendingBatch(host_frames, host_numbers, host_cams, event, engine.loaded.labels,
                            res.top_p.shape[1], engine.config.component, tuple(res.cams.shape[1:]), (height, width))

    def run(self, frames: np.ndarray) -> tuple[np.ndarray, list[FrameStats]]:
        """:meth:`submit` then wait: finished frames and per-frame stats."""
        return self.submit(frames).result()
