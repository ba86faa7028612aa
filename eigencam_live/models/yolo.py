"""Ultralytics YOLO, optional: ``--model yolo11n.pt`` (any YOLO detection checkpoint) or a ``.yaml``
(random weights), when the ``ultralytics`` package is importable.

``ultralytics`` is not a requirement: it depends on ``opencv-python``, whose Qt plugins break PyQt5
beside ``opencv-python-headless``. It runs here installed without its dependencies (README, Models).

The ``YOLO`` wrapper is never called: its ``.eval()``/``.train()`` start training. Its inner
``DetectionModel`` is wrapped in :class:`YoloDetector`, which decodes the head's output into boxes
(the torchvision detectors' format, so the engine treats both alike) and exposes the three neck maps
the Detect head reads as one layer, ``neck``, the default target (stacked on one grid like an FPN's).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from eigencam_live.errors import ModelError

from .loaded import LoadedModel, ModelSpec

__all__ = ["YOLO_SUFFIXES", "YoloDetector", "load_yolo"]

YOLO_SUFFIXES = (".pt", ".yaml", ".yml")
#: Boxes below this confidence are dropped before NMS (the engine's ``score`` filters after it).
_CONF = 0.01
_IOU = 0.45


class _Neck(nn.Module):
    """Identity on the list of maps the Detect head receives: a named layer for the hooks."""

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        return maps


class YoloDetector(nn.Module):
    """A YOLO ``DetectionModel`` as a detector of the engine: ``x`` (RGB in ``[0, 1]``, sides
    multiples of 32) -> per image ``{"boxes" (N, 4) xyxy in input pixels, "scores", "labels"}``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.model = inner
        self.neck = _Neck()

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        from ultralytics.utils.nms import non_max_suppression

        # For this call only, the Detect head's input passes through ``neck`` (its hooks fire); the
        # head gets a copy of the list, which some versions (8.3) overwrite in place with outputs.
        handle = self.model.model[-1].register_forward_pre_hook(lambda _m, args: (list(self.neck(args[0])),))
        try:
            out = self.model(x)
        finally:
            handle.remove()
        preds = out[0] if isinstance(out, (tuple, list)) else out
        kept = non_max_suppression(preds, conf_thres=_CONF, iou_thres=_IOU, max_det=300, max_time_img=1.0)
        return [{"boxes": k[:, :4], "scores": k[:, 4], "labels": k[:, 5].long()} for k in kept]


def load_yolo(source: str, weights: str = "imagenet") -> LoadedModel:
    """A YOLO detection model from a checkpoint (``.pt``, trained) or a model ``.yaml`` (random).

    Raises:
        ModelError: one line: ``ultralytics`` is not installed, the file is missing or not a
            detection model, or ``--weights`` was given (a checkpoint holds its own).
    """
    if weights != "imagenet" and not (weights == "none" and not source.lower().endswith(".pt")):
        raise ModelError("a YOLO model brings its own weights: leave --weights out (a .pt checkpoint is trained, "
                         "a model .yaml random)")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_OFFLINE", "True")
    try:
        from ultralytics import YOLO
    except ImportError:
        raise ModelError(f"--model {source} needs the ultralytics package, which is not installed: pip install "
                         "--no-deps ultralytics ultralytics-thop && pip install matplotlib polars psutil pyyaml "
                         "requests pillow (without its dependencies: its opencv-python breaks PyQt5)") from None
    path = Path(source).expanduser()
    if path.suffix == ".pt" and not path.is_file():
        raise ModelError(f"YOLO checkpoint not found: {path} (download it once, e.g. from the Ultralytics "
                         "releases, or give a model .yaml for random weights)")
    try:
        wrapper = YOLO(str(path) if path.is_file() else source, task="detect")
        inner = wrapper.model
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load YOLO model {source}: {text}") from None
    head = type(inner.model[-1]).__name__ if hasattr(inner, "model") else "?"
    if type(inner).__name__ != "DetectionModel" or not head.endswith("Detect"):
        raise ModelError(f"{source} is a {type(inner).__name__} with a {head} head; only YOLO detection models "
                         "are supported (not segmentation, pose or oriented boxes)")
    inner = inner.float().eval()  # the inner module's eval, never the wrapper's (it would train)
    for p in inner.parameters():
        p.requires_grad_(False)
    names = getattr(inner, "names", None) or {}
    labels = [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]
    net = YoloDetector(inner).eval()
    return LoadedModel(net=net, spec=ModelSpec(source, "neck", None), labels=labels, weights=weights,
                       trained=path.suffix == ".pt", mean=(0.0, 0.0, 0.0),
                       std=(1.0, 1.0, 1.0), detector=True)
