"""Models: any network that yields a feature map, from one string.

- ``resnet50``, ``mobilenet_v3_large``, ...: torchvision's classifiers (:mod:`.torchvision_zoo`);
- ``fasterrcnn_mobilenet_v3_large_320_fpn``, ``ssdlite320_mobilenet_v3_large``, ...: torchvision's
  object detectors (:mod:`.detectors`);
- ``timm:NAME``: any timm classifier (:mod:`.timm_zoo`);
- ``package.module:callable``: your own network from a factory (:mod:`.factory`); in the library,
  a module object (:func:`from_module`);
- ``model.onnx``: an ONNX file, run by ONNX Runtime (:mod:`eigencam_live.backends.onnx_file`);
- ``yolo11n.pt`` or a model ``.yaml``: Ultralytics YOLO, when installed (:mod:`.yolo`).

Every source yields a :class:`LoadedModel`. A layer's output is read as a feature map whatever its
layout (:func:`to_feature_map`); :class:`ActivationCapture` is the one place hooks are registered.
"""

from __future__ import annotations

import torch

from .detectors import DETECTORS, Detection, frame_detections, load_detector
from .factory import FACTORY, from_module, load_factory
from .layers import ActivationCapture, Layer, feature_layers, find_layer, last_map_layer, to_feature_map
from .loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelSpec
from .timm_zoo import PREFIX as TIMM_PREFIX
from .timm_zoo import load_timm
from .torchvision_zoo import MODELS, cached_weights_path, load_torchvision
from .yolo import YOLO_SUFFIXES, load_yolo

__all__ = [
    "DETECTORS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "ActivationCapture",
    "Detection",
    "frame_detections",
    "Layer",
    "LoadedModel",
    "ModelSpec",
    "cached_weights_path",
    "feature_layers",
    "find_layer",
    "from_module",
    "last_map_layer",
    "load_model",
    "model_kind",
    "to_feature_map",
]


def model_kind(source: str) -> str | None:
    """``torchvision``, ``detector``, ``timm``, ``factory``, ``onnx`` or ``yolo`` for a model string
    of that form (not yet checked further), or ``None`` when it has none of the forms."""
    if not isinstance(source, str) or not source:
        return None
    if source.lower().endswith(".onnx"):
        return "onnx"
    if source.lower().endswith(YOLO_SUFFIXES):
        return "yolo"
    if source.startswith(TIMM_PREFIX):
        return "timm" if len(source) > len(TIMM_PREFIX) else None
    if FACTORY.match(source):
        return "factory"
    if source in DETECTORS:
        return "detector"
    return "torchvision" if source in MODELS else None


def load_model(source: str, weights: str = "imagenet", *, allow_download: bool = True) -> LoadedModel:
    """Build the network a model string names, in eval mode on the CPU (not ONNX files: see
    :func:`eigencam_live.backends.load_onnx`).

    Args:
        source: a torchvision name, ``timm:NAME`` or ``package.module:callable``.
        weights: ``imagenet`` (the source's pretrained weights; a factory's own), ``none`` (random
            initialisation, the same each run: seeded; a factory's module as returned), or a
            state_dict file loaded on top.
        allow_download: for pretrained weights, download what is missing from the cache.

    Raises:
        ModelError: an unknown name (with close matches), a factory that fails.
        WeightsUnavailableError: pretrained weights neither cached nor downloadable (offline);
            callers may fall back to ``none``.
        WeightsError: a state_dict file that is missing, unreadable, unhealthy or does not fit.
    """
    if weights == "none":
        # The same random weights every run (seeded, the caller's random state left as it was):
        # runs compare, and an ONNX export of them is found in the cache again, not made anew.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(0)  # (the CPU's alone: models are built there; CUDA's is left)
            return _load(source, weights, allow_download)
    return _load(source, weights, allow_download)


def _load(source: str, weights: str, allow_download: bool) -> LoadedModel:
    kind = model_kind(source)
    if kind == "timm":
        return load_timm(source[len(TIMM_PREFIX):], weights, allow_download=allow_download)
    if kind == "factory":
        return load_factory(source, weights)
    if kind == "detector":
        return load_detector(source, weights, allow_download=allow_download)
    if kind == "yolo":
        return load_yolo(source, weights)
    return load_torchvision(source, weights, allow_download=allow_download)  # raises for unknown names
