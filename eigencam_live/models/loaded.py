"""What every model source yields: a :class:`LoadedModel` (the network, its default layer, labels,
normalisation and provenance), whatever built it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["GREY_MEAN", "GREY_STD", "IMAGENET_MEAN", "IMAGENET_STD", "LoadedModel", "ModelSpec", "normalisation"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: A grey (1-channel) network's default: ImageNet's numbers averaged over R, G and B (timm's for
#: ``in_chans=1``).
GREY_MEAN = (0.449,)
GREY_STD = (0.226,)


@dataclass(frozen=True)
class ModelSpec:
    """How to use one network for Eigen-CAM.

    Attributes:
        name: the model source as the user gave it (``resnet50``, ``timm:convnext_tiny``,
            ``mynet:build``, a file path).
        layer: the default target layer, a dotted submodule name (an ONNX node output for a file).
        fixed_input: ``(H, W)`` the network requires, or ``None`` when any size works.
    """

    name: str
    layer: str
    fixed_input: tuple[int, int] | None = None


@dataclass
class LoadedModel:
    """A ready-to-run model: eval mode, with its labels and provenance.

    The layout of a layer's output (NCHW, NHWC or tokens) is not stored: it is read from the output
    and the input's size on every frame (:func:`~eigencam_live.models.to_feature_map`).

    Attributes:
        net: the ``nn.Module`` (eval mode), or an :class:`~eigencam_live.backends.OnnxFile`.
        spec: its :class:`ModelSpec`.
        labels: class names, index -> name; empty = class indices.
        weights: ``imagenet``, ``none``, the path of the state_dict (or ONNX) file, or ``own``: a
            module handed to the engine, with the weights it holds.
        trained: ``False`` when the network runs with random weights.
        mean, std: per-channel input normalisation (RGB, on ``[0, 1]`` pixels; one number each for a
            grey network).
        note: what the user is to be told about the network once it is loaded (a warning), or ``None``.
        channels: 3 (the frames' RGB) or 1: a grey network, fed the frames' luma (BT.601, as
            OpenCV's and Pillow's grey conversions).
        prefix_tokens: for a transformer, the class/register tokens before the patch tokens when
            the model says so (timm's ``num_prefix_tokens``); a hint, the output's shape decides.
        detector: an object detector (its outputs are boxes, :mod:`.detectors`), not a classifier.
        classes: how many scores a classifier gives, once a shape probe has run (``None`` before,
            and for detectors and networks without a classifier head).
        headless: the network returns features, not class scores (timm's ``num_classes=0``
            models, DINOv2's and EVA-02's): no predictions are read from it.
        normalises_itself: why ``mean`` and ``std`` are the network's own and fixed (it takes
            uint8 pixels, or registers its own mean and std), or ``None``: settings that would
            normalise its input a second time are refused.
        scores_at: where a network returns an unnamed tuple (or list) of several outputs of the
            class scores' shape, the index of the one that none of the others is computed from
            (the logits, not the embedding they are computed from), found once when a factory's
            network is loaded; ``None``: the first of that shape (or none such).
        handed: the caller's own module, handed to the engine (``Engine(model=...)``): its weights
            may change while it runs (a network in training), which a copy made of it must follow.
        scores_from: ``"sigmoid"`` or ``"softmax"`` where the network's class scores come out of
            that operation (probabilities already: :func:`~eigencam_live.results.class_probabilities`
            takes a sigmoid's as they are), ``None`` for logits (found where a factory's or a
            handed network is loaded, and in an ONNX file's graph).
    """

    net: nn.Module
    spec: ModelSpec
    labels: list[str]
    weights: str
    trained: bool
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    prefix_tokens: int | None = None
    detector: bool = False
    classes: int | None = None
    headless: bool = False
    channels: int = 3
    note: str | None = None
    normalises_itself: str | None = None
    scores_at: int | None = None
    scores_from: str | None = None
    handed: bool = False


def normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The default ``(mean, std)`` of a network taking ``channels`` (1 or 3) input channels."""
    return (GREY_MEAN, GREY_STD) if channels == 1 else (IMAGENET_MEAN, IMAGENET_STD)
