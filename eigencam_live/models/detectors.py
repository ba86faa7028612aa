"""torchvision's object detectors by name, made to run on the engine's frame path.

A detector's own transform normalises and resizes each image (to 800 pixels on the short side for
most) and pads the batch; its feature maps then tile the padded, resized image, not the frame. Here
the transform is told to take the input as given: the engine resizes the whole frame (its short
side ``short_side``, both sides multiples of 32, never cropped) and normalises it with the
detector's own mean and std, exactly as for a classifier, so the maps tile the frame and boxes come
back in network-input pixels, which the engine scales to the frame's.

The default target layer is ``backbone``: its output (the FPN levels, or SSD's feature maps) is a
dict of maps, which :func:`~eigencam_live.models.to_feature_map` brings to one grid and stacks along
channels. Any single level (``backbone.fpn.layer_blocks.N``) or backbone layer can be chosen instead.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eigencam_live.errors import ModelError

from .loaded import LoadedModel, ModelSpec
from .torchvision_zoo import pretrained_state
from .weights import load_state_file

__all__ = ["DETECTORS", "Detection", "as_detector", "coco_labels", "frame_detections", "is_torchvision_detector",
           "keep_boxes_from", "load_detector"]

#: Every supported detector (COCO-trained in torchvision), by builder name.
DETECTORS = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
    "ssd300_vgg16",
    "maskrcnn_resnet50_fpn",
)


class Detection(NamedTuple):
    """One box: ``box = (x0, y0, x1, y1)`` in frame pixels, its class name and its score; for Mask
    R-CNN also ``mask``, ``(H, W)`` bool in frame pixels (drawn faintly; not in :meth:`as_dict`)."""

    box: tuple[float, float, float, float]
    label: str
    score: float
    mask: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "label": self.label, "score": round(float(self.score), 4)}


def _as_given(transform: nn.Module, *, normalise: bool = False) -> None:
    """Make a torchvision ``GeneralizedRCNNTransform`` take its input as given: no normalisation (the
    engine normalised it; kept with ``normalise``) and no resize (the engine sized it), so maps and
    boxes stay on its grid."""

    def normalize(image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(image: torch.Tensor, target=None):
        return image, target

    if not normalise:
        transform.normalize = normalize
    transform.resize = resize


#: The lowest box score a torchvision detector is let to keep: at 0 its non-maximum suppression
#: would take every anchor of every class (90,000 boxes for Faster R-CNN).
SCORE_FLOOR = 1e-3


def keep_boxes_from(net: nn.Module, score: float) -> None:
    """Make a torchvision detector keep the boxes from ``score`` on (at least :data:`SCORE_FLOOR`):
    its own threshold (0.05; FCOS 0.2; SSD 0.001) dropped them before the engine's ``score``, so a
    lower setting showed no more boxes. Where it was higher, the detector does less work. (A hair
    under ``score``: torchvision keeps the scores above its threshold, the engine those at or above.)"""
    if not is_torchvision_detector(net):  # inside a module of one's own
        net = next((m for m in net.modules() if is_torchvision_detector(m)), net)
    heads = getattr(net, "roi_heads", None)  # Faster/Mask/Keypoint R-CNN's; RetinaNet, FCOS, SSD: its own
    owner = heads if hasattr(heads, "score_thresh") else net
    if hasattr(owner, "score_thresh"):
        owner.score_thresh = max(float(score) * (1 - 1e-6), SCORE_FLOOR)


def frame_detections(outputs: list[dict], labels: list[str], score: float, input_hw: tuple[int, int],
                     frame_hw: tuple[int, int]) -> list[list[Detection]]:
    """A detector's per-image outputs (boxes in network-input pixels) -> the boxes scoring at least
    ``score``, in frame pixels (inside the frame), with class names, best first."""
    (h, w), (height, width) = input_hw, frame_hw
    scale = torch.tensor([width / w, height / h, width / w, height / h])
    out = []
    for o in outputs:
        keep = (o["scores"] >= score) & torch.isfinite(o["boxes"]).all(dim=1)
        boxes = (o["boxes"][keep].float().cpu() * scale).clamp_(min=0)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(max=width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(max=height)
        scores, classes = o["scores"][keep].float().cpu().tolist(), o["labels"][keep].cpu().tolist()
        masks = [None] * len(scores)
        if "masks" in o and len(scores):  # Mask R-CNN: (N, 1, h, w) in input pixels -> frame pixels
            soft = F.interpolate(o["masks"][keep].float(), size=(height, width), mode="bilinear", align_corners=False)
            masks = list((soft[:, 0] > 0.5).cpu().numpy())
        dets = [Detection(tuple(b), labels[c] if 0 <= c < len(labels) else str(c), s, m)
                for b, c, s, m in zip(boxes.tolist(), classes, scores, masks, strict=True)]
        out.append(sorted(dets, key=lambda d: -d.score))
    return out


def load_detector(name: str, weights: str = "imagenet", *, allow_download: bool = True) -> LoadedModel:
    """Build torchvision's detector ``name`` in eval mode on the CPU.

    Args:
        weights: ``imagenet`` (for detectors: torchvision's COCO weights, through its cache), ``none``
            (random initialisation, no backbone download) or a state_dict file.

    Raises:
        ModelError: unknown name. WeightsUnavailableError: COCO weights neither cached nor
        downloadable. WeightsError: a bad state_dict file.
    """
    from torchvision.models import get_model, get_model_weights

    if name not in DETECTORS:
        close = difflib.get_close_matches(name, DETECTORS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Detectors: {', '.join(DETECTORS)}"
        raise ModelError(f"unknown detector {name!r}.{hint}")
    net = get_model(name, weights=None, weights_backbone=None)
    trained = weights != "none"
    if weights == "imagenet":
        net.load_state_dict(pretrained_state(name, "COCO", allow_download=allow_download))
    elif weights != "none":
        weights = load_state_file(net, weights, name)
    return as_detector(net, name, list(get_model_weights(name).DEFAULT.meta["categories"]), weights, trained)


def is_torchvision_detector(net: nn.Module) -> bool:
    """Whether ``net`` is built like torchvision's detectors (Faster/Mask/Keypoint R-CNN, RetinaNet,
    FCOS, SSD: a ``GeneralizedRCNNTransform`` in front), whoever built it (a factory)."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    return isinstance(getattr(net, "transform", None), GeneralizedRCNNTransform)


def coco_labels(net: nn.Module) -> list[str]:
    """COCO's 91 class names where ``net``'s head has 91 classes (torchvision's detectors as
    trained), else none (the boxes are named by class index)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    coco = FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]
    return list(coco) if class_count(net) == len(coco) else []


def class_count(net: nn.Module) -> int | None:
    """How many classes a torchvision detector's head scores (background included), or ``None``."""
    head = getattr(net, "head", None)
    heads = [getattr(getattr(getattr(net, "roi_heads", None), "box_predictor", None), "cls_score", None),
             getattr(head, "classification_head", None)]
    counts = [getattr(h, a, None) for h in heads for a in ("out_features", "num_classes", "num_columns")]
    return next((c for c in counts if isinstance(c, int)), None)


def as_detector(net: nn.Module, name: str, labels: list[str], weights: str, trained: bool, *,
                inside: str = "") -> LoadedModel:
    """A torchvision detector (:func:`is_torchvision_detector`) made to run on the engine's frame
    path: its transform takes the input as given (the module is changed), the target layer is
    ``backbone``, and the input is normalised with the transform's mean and std.

    ``inside``: where the detector is within ``net``, a module of one's own that runs layers of its
    own around it: ``net`` runs, on pixels in [0, 1] as torchvision's detectors take them, and the
    detector's transform normalises them after those layers, as it did (it no longer resizes)."""
    detector = net.get_submodule(inside) if inside else net
    transform = detector.transform
    mean, std = tuple(float(v) for v in transform.image_mean), tuple(float(v) for v in transform.image_std)
    fixed = tuple(int(v) for v in transform.fixed_size) if getattr(transform, "fixed_size", None) else None
    _as_given(transform, normalise=bool(inside))
    if inside:
        mean, std = (0.0,) * len(mean), (1.0,) * len(std)
    net.eval()
    # the head's class count: a labels list or file of another length is refused, as for a classifier
    layer = f"{inside}.backbone" if inside else "backbone"
    return LoadedModel(net=net, spec=ModelSpec(name, layer, fixed), labels=labels, weights=weights,
                       trained=trained, mean=mean, std=std, detector=True, classes=class_count(detector))
