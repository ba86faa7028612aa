"""The finish of the frame path and what it returns: the map laid over the frame's pixels, the
picture drawn, and one :class:`FrameResult` per frame from a batch in flight (:class:`PendingFrames`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from functools import cached_property

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .render import RenderConfig, draw_boxes, maps_in_boxes, render_frames

__all__ = ["SCORE_NAMES", "SMOOTH_STEP", "FrameResult", "PendingFrames", "batched_scores", "class_probabilities", "finish_pictures",
           "label_predictions", "maps_on_frames", "peak_pixel", "reads_as_scores", "score_output", "scores_in_lineage",
           "squashed_by"]

#: Pixels a feature cell is enlarged to by bicubic interpolation before bilinear takes over.
SMOOTH_STEP = 8


class FrameResult:
    """What the engine says about one frame.

    Attributes:
        cam: ``(h, w)`` float32 in ``[0, 1]``, the map at feature resolution.
        picture: ``(H, W', 3)`` uint8 BGR, the frame drawn as asked (``render=`` of
            :meth:`Engine.process`), or ``None`` when no drawing was asked for.
        predictions: top-k ``(label, probability)`` pairs, most likely first (a detector: its
            boxes' ``(label, score)``, best first).
        detections: a detector's boxes at or above the score threshold, best first
            (:class:`~eigencam_live.models.Detection`, frame pixels); ``None`` for a classifier.
        explained: ``(K,)`` float32, explained variance of the leading components (``K`` is 5, or the
            component shown where it is beyond, at most the map's rank).
        component: the 1-based component shown.
        peak: ``(x, y)`` frame pixel at the centre of the map's hottest feature cell (the
            upsampled heatmap is flat across a corner cell's outer half, so its own argmax would
            land on the frame's edge).
        timings: host milliseconds per stage for this frame (a batch's time split evenly); on CUDA
            the device works asynchronously and the wait shows under ``finish``.
        heatmap: ``(H, W)`` float32 in ``[0, 1]``, the map laid over the frame's pixels
            (:func:`maps_on_frames`; computed when first read unless drawing needed it).
    """

    def __init__(self, cam: np.ndarray, predictions: list[tuple[str, float]], explained: np.ndarray, component: int,
                 peak: tuple[int, int], frame_size: tuple[int, int], *, picture: np.ndarray | None = None,
                 heatmap: np.ndarray | None = None, timings: dict[str, float] | None = None,
                 detections: list | None = None, in_boxes: bool = False) -> None:
        self.cam, self.predictions, self.explained = cam, predictions, explained
        self.detections, self.in_boxes = detections, in_boxes
        self.component, self.peak, self.frame_size = component, peak, frame_size
        self.picture = picture
        self.timings = timings or {}
        if heatmap is not None:
            self.__dict__["heatmap"] = heatmap

    @cached_property
    def heatmap(self) -> np.ndarray:
        heat = maps_on_frames(torch.from_numpy(self.cam)[None], self.frame_size)[0]
        if self.in_boxes and self.detections is not None:  # as drawn: renormalised inside the boxes
            heat = maps_in_boxes(heat, self.detections)
        return heat.numpy()

    @property
    def explained_component(self) -> float:
        """Explained variance of the shown component (0 when beyond the returned spectrum)."""
        k = self.component - 1
        return float(self.explained[k]) if k < len(self.explained) else 0.0


class PendingFrames:
    """A batch in flight. :meth:`result` waits for it (on CUDA the loop's only sync) and finishes
    on the host what is left: labels, the peak's pixel and, off the resident route, the pictures."""

    def __init__(self, frames: np.ndarray, host: list[torch.Tensor], render: RenderConfig | None, *,
                 labels: list[str], k: int, component: int, cuda: bool, detections: list[list] | None = None) -> None:
        self._frames, self._host, self._render = frames, host, render
        self._detections = detections
        self._labels, self._k, self._component = labels, k, component
        self._event = None
        if cuda:  # the downloads were queued after the work: their completion is the batch's
            self._event = torch.cuda.Event()
            self._event.record()
        self.timings: dict[str, float] = {}

    def result(self) -> list[FrameResult]:
        """One :class:`FrameResult` per frame, in order."""
        return list(self.each())

    def each(self) -> Iterator[FrameResult]:
        """:meth:`result` one frame at a time, each frame's picture drawn when it is taken: a
        caller that lets each go before the next (``annotate``) holds one frame's map and picture
        at a time, not the batch's (at 4K, side by side, batch 8: 0.7 GB)."""
        t0 = time.perf_counter()
        if self._event is not None:
            self._event.synchronize()
        numbers, cams = self._host[0].numpy(), self._host[1].numpy()
        b, height, width, _ = self._frames.shape
        drawn_on_device = self._host[2].numpy() if len(self._host) == 3 else None
        dets = self._detections
        # each frame's share of the batch's stages and of the wait, then its own drawing
        shared = {name: seconds * 1000.0 / b for name, seconds in self.timings.items()}
        shared["finish"] = shared.get("finish", 0.0) + (time.perf_counter() - t0) * 1000.0 / b
        k = self._k
        for i, row in enumerate(numbers):
            t1 = time.perf_counter()
            heatmap = picture = None
            if drawn_on_device is not None:  # drawn on the device; the heatmap is made from the map if asked for
                picture = drawn_on_device[i]
            elif self._render is not None:
                heat, drawn = finish_pictures(torch.from_numpy(self._frames[i : i + 1]), torch.from_numpy(cams[i : i + 1]),
                                              self._render, None if dets is None else dets[i : i + 1])
                heatmap, picture = heat.numpy()[0], drawn.numpy()[0]
            if picture is not None and dets is not None and self._render.boxes:
                draw_boxes(picture, dets[i], width, height)
            preds = label_predictions(self._labels, row[k : 2 * k].astype(np.int64), row[:k])
            if dets is not None:
                preds = [(d.label, d.score) for d in dets[i]]
            peak = peak_pixel(int(row[2 * k]), cams.shape[1:], (height, width))
            timings = dict(shared, finish=shared["finish"] + (time.perf_counter() - t1) * 1000.0)
            yield FrameResult(
                cams[i], preds, row[2 * k + 1 :].astype(np.float32), self._component, peak, (height, width),
                picture=picture, heatmap=heatmap, timings=timings, detections=None if dets is None else dets[i],
                in_boxes=self._render is not None and self._render.in_boxes,
            )


def maps_on_frames(cams: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, h, w)`` maps in ``[0, 1]`` -> ``(B, H, W)`` float32 laid over ``size = (H, W)`` frames.

    Smooth, with pixel centres aligned (the feature grid tiles the network input, which tiles the
    frame): bicubic (Keys, a = -0.75) up to ``SMOOTH_STEP`` pixels a cell, then bilinear the rest of
    the way, clipped to ``[0, 1]`` (bicubic overshoots a little at edges). Bilinear alone drew a 7x7
    map's cells as visible diamonds (its level sets are squares turned 45 degrees); bicubic's are
    round, and bilinear within an 8-pixel cell of a bicubic field shows no corner. Measured on a
    7x12 map to 768x432: 0.06 ms, against 1.5 ms for bicubic all the way (within 0.013 of it).
    On the maps' device; OpenCV's kernels on the CPU (the same values as torch's within 1e-5).
    """
    height, width = size
    h, w = cams.shape[1:]
    mid = (min(height, h * SMOOTH_STEP), min(width, w * SMOOTH_STEP))
    if cams.is_cpu:
        heat = np.empty((cams.shape[0], height, width), np.float32)  # each map resized into its place
        for c, into in zip(cams.float().numpy(), heat, strict=True):
            if mid == size:
                cv2.resize(c, (width, height), dst=into, interpolation=cv2.INTER_CUBIC)
            else:
                cv2.resize(cv2.resize(c, (mid[1], mid[0]), interpolation=cv2.INTER_CUBIC), (width, height), dst=into,
                           interpolation=cv2.INTER_LINEAR)
        # in numpy: a torch op this size would start torch's thread team, outside the engine's calls
        return torch.from_numpy(np.clip(heat, 0.0, 1.0, out=heat))
    x = F.interpolate(cams.float()[:, None], size=mid, mode="bicubic", align_corners=False)
    if mid != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x[:, 0].clamp_(0.0, 1.0)


def finish_pictures(frames: torch.Tensor, cams: torch.Tensor, look: RenderConfig,
                    detections: list[list] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, H, W, 3)`` uint8 BGR frames and their ``(B, h, w)`` maps -> ``(heatmaps (B, H, W),
    pictures (B, H, W', 3) uint8)``, on the tensors' device; with a detector's boxes and
    ``look.in_boxes``, the maps renormalised inside them (the boxes are drawn later, on the host)."""
    heatmaps = maps_on_frames(cams, tuple(frames.shape[1:3]))
    if detections is not None and look.in_boxes:
        heatmaps = torch.stack([maps_in_boxes(h, boxes) for h, boxes in zip(heatmaps, detections, strict=True)])
    return heatmaps, render_frames(frames, heatmaps, look)


def peak_pixel(flat_index: int, cam_shape: tuple[int, int], frame_shape: tuple[int, int]) -> tuple[int, int]:
    """``(x, y)`` frame pixel at the centre of feature cell ``flat_index`` of a ``cam_shape`` map
    laid over a ``frame_shape`` ``(H, W)`` frame."""
    h, w = cam_shape
    i, j = divmod(flat_index, w)
    return int((j + 0.5) * frame_shape[1] / w), int((i + 0.5) * frame_shape[0] / h)


#: Words in an output's name that say it holds the class scores.
SCORE_NAMES = ("logit", "score", "prob", "pred", "class")


def score_output(outputs: list[tuple[str | None, object]], *, by_name: bool = False) -> int | None:
    """Which of a network's outputs, ``(name or None, value)`` pairs, holds its class scores: the
    first float ``(B, K)`` (or ``(B, K, 1, 1)``) one whose name says so (:data:`SCORE_NAMES`),
    else (unless ``by_name``) the first such one wherever it stands (a map may come first);
    ``None`` where none does. ``by_name``: outputs named by their network, whose names say what
    they are (a Hugging Face backbone's ``pooler_output`` is no scores)."""
    found = [i for i, (_, v) in enumerate(outputs) if reads_as_scores(v)]
    said = [(i, outputs[i][0].lower()) for i in found if isinstance(outputs[i][0], str)]
    named = [i for i, name in said if any(w in name for w in SCORE_NAMES)]
    # by shape, never what is named as features (an exported backbone's pooler_output)
    features = {i for i, name in said if any(w in name for w in _NOT_SCORES)}
    return (named or ([] if by_name else [i for i in found if i not in features]) or [None])[0]


#: Words in an output's name that say it holds features, not class scores.
_NOT_SCORES = ("pool", "hidden", "embed", "feature")


def reads_as_scores(value) -> bool:
    """Whether a network's output has the form of class scores: float, ``(B, K)`` (or ``(B, K, 1, 1)``)."""
    return _floating(value) and class_scores(value) is not None


def scores_in_lineage(out: object) -> int | None:
    """Where a network's output ``out`` (of a forward pass with autograd) is an unnamed tuple (or
    list) holding several outputs of the class scores' shape, the index of the first one that no
    other of them is computed from (its autograd graph): ``(embedding, logits)`` gives the logits,
    as an ONNX file's graph does (a trial: the factory's read its 64-wide embedding as the scores,
    the export's the logits). ``None`` where there are not several, or the first is it."""
    if not isinstance(out, (tuple, list)) or hasattr(out, "_fields"):  # (a named tuple's names say it)
        return None
    tensors = [v for v in out if isinstance(v, torch.Tensor)]
    shaped = [i for i, v in enumerate(tensors) if v.grad_fn is not None and v.is_floating_point()
              and class_scores(v) is not None]
    if len(shaped) < 2:
        return None
    feeds = {i for i in shaped for j in shaped if i != j and _reaches(tensors[j].grad_fn, tensors[i].grad_fn)}
    rest = [i for i in shaped if i not in feeds]
    return rest[0] if rest and rest[0] != shaped[0] else None


#: What a network's last operation makes of its class scores, by the name of the operation: values
#: that are probabilities already (each class's own: a multi-label head; or a distribution).
SQUASHES = {"Sigmoid": "sigmoid", "Softmax": "softmax"}
#: Operations that only reshape the scores on their way out (a flatten after a 1x1 convolution's head).
_RESHAPES = ("View", "UnsafeView", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Clone", "Alias", "Identity", "Select",
             "Slice", "Permute", "Transpose", "T", "Expand", "AsStrided", "ToCopy")


def squashed_by(scores: torch.Tensor) -> str | None:
    """``"sigmoid"`` or ``"softmax"`` where ``scores`` (of a forward pass with autograd) come out of
    that operation, only reshaped after it; else ``None`` (logits). Probabilities given as they are:
    a softmax on a sigmoid's gave 0.27 for a class the network put at 0.89 (a library trial)."""
    fn = getattr(scores, "grad_fn", None)
    while fn is not None:
        kind = re.sub(r"Backward\d*$", "", type(fn).__name__)
        for op, squash in SQUASHES.items():
            if kind in (op, f"Safe{op}"):
                return squash
        if kind not in _RESHAPES:
            return None
        fn = next((f for f, _ in fn.next_functions if f is not None), None)
    return None


def _reaches(start, target) -> bool:
    """Whether autograd node ``target`` lies in the graph behind ``start``."""
    seen, stack = set(), [start]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        if fn is target:
            return True
        seen.add(id(fn))
        stack.extend(f for f, _ in fn.next_functions)
    return False


def _floating(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def class_scores(value):
    """A network's output (a tensor or an array) as ``(B, K)`` class scores (``(B, K, 1, 1)`` from a
    convolutional head squeezed), or ``None`` where it is no such thing (a feature map)."""
    if value.ndim >= 2 and all(d == 1 for d in value.shape[2:]):
        return value.reshape(value.shape[0], value.shape[1])
    return None


def batched_scores(output, batch: int):
    """A one-dimensional float output (a tensor or an array) as ``(B, K)`` scores for ``batch``
    images: one score an image (``(B,)``, a yes/no head's ``.squeeze(1)``) as ``(B, 1)``; for one
    image, ``(K,)`` (the batch squeezed away, ``.squeeze()``) as ``(1, K)``, and one number as
    ``(1, 1)``. Anything else as it is: integers are class indices (an argmax), no scores. (A library
    trial: a ``(B,)`` head gave no predictions, and nothing said why.)"""
    if not _floating(output):
        return output
    if output.ndim == 0 and batch == 1:
        return output.reshape(1, 1)
    if output.ndim != 1:
        return output
    if batch == 1:
        return output[None]
    return output[:, None] if output.shape[0] == batch else output


def class_probabilities(scores: torch.Tensor, squashed: str | None = None) -> torch.Tensor:
    """``(B, K)`` class probabilities from a network's ``(B, K)`` scores: the scores themselves where
    the network ends in a sigmoid (``squashed``, :func:`squashed_by`: each class's own probability,
    a multi-label head's or a yes/no head's), else their softmax (logits, or
    log-probabilities, which it leaves as they are), or the scores themselves where a row already is
    a distribution (non-negative, summing to 1 within the rounding of the scores' dtype: 1e-3 in
    fp32, 1e-2 in fp16 and bf16): a network or an ONNX file that ends in a softmax, whose softmax
    again would flatten every probability towards 1/K. (Logits that happen to be such a row, which
    few classes make possible, are taken as probabilities.) One score alone is a yes/no head's logit
    (binary cross-entropy with logits): its sigmoid, never a softmax's constant 1.
    Decided per row, with no host synchronisation on a GPU."""
    tol = 1e-3 if scores.dtype in (torch.float32, torch.float64) else 1e-2
    scores = scores.float()
    if scores.shape[1] == 0:  # a detector's, or a backbone's: no classes
        return scores
    if squashed == "sigmoid":
        return scores.clamp(0.0, 1.0)
    if scores.shape[1] == 1:  # one score (a yes/no head): a logit, the sigmoid's as it was trained
        return torch.sigmoid(scores)
    if scores.device.type == "cpu":  # read on the host in numpy (a torch op costs 10-30 us after a forward)
        a = scores.numpy()
        ok = (a.min(axis=1) >= 0) & (np.abs(a.sum(axis=1) - 1) <= tol)
        if not ok.any():
            return torch.softmax(scores, dim=1)
        ready = torch.from_numpy(ok)
    else:
        ready = (scores.amin(dim=1) >= 0) & ((scores.sum(dim=1) - 1).abs() <= tol)
    return torch.where(ready[:, None], scores, torch.softmax(scores, dim=1))


def label_predictions(labels: list[str], indices: np.ndarray, probs: np.ndarray) -> list[tuple[str, float]]:
    """Pair top-k class indices with their names: ``[(label, probability), ...]``."""
    return [(labels[j] if 0 <= j < len(labels) else str(j), float(p)) for j, p in zip(indices.tolist(), probs, strict=True)]
