"""torchvision's classifiers by name: their default target layers, weights and labels."""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path

import torch

from eigencam_live.errors import ModelError, WeightsUnavailableError

from .loaded import LoadedModel, ModelSpec
from .weights import load_state_file

__all__ = ["MODELS", "cached_weights_path", "load_torchvision", "pretrained_state"]


def _specs() -> dict[str, ModelSpec]:
    specs: list[ModelSpec] = []
    for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
              "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"):
        specs.append(ModelSpec(n, "layer4"))
    # VGG and AlexNet: the ReLU after the last conv, before the final max-pool halves the map.
    specs += [ModelSpec(n, f"features.{i}") for n, i in (
        ("vgg11", 19), ("vgg11_bn", 27), ("vgg13", 23), ("vgg13_bn", 33), ("vgg16", 29), ("vgg16_bn", 42),
        ("vgg19", 35), ("vgg19_bn", 51), ("alexnet", 11))]
    for n in ("densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_small",
              "mobilenet_v3_large", "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "convnext_tiny",
              "convnext_small", "convnext_base", "convnext_large", "squeezenet1_0", "squeezenet1_1"):
        specs.append(ModelSpec(n, "features"))
    specs += [ModelSpec(f"efficientnet_b{i}", "features") for i in range(8)]
    specs += [ModelSpec(f"regnet_{n}", "trunk_output") for n in (
        "y_400mf", "y_800mf", "y_1_6gf", "y_3_2gf", "y_8gf", "y_16gf", "y_32gf", "y_128gf",
        "x_400mf", "x_800mf", "x_1_6gf", "x_3_2gf", "x_8gf", "x_16gf", "x_32gf")]
    specs += [ModelSpec(f"shufflenet_v2_x{n}", "conv5") for n in ("0_5", "1_0", "1_5", "2_0")]
    specs += [ModelSpec(f"mnasnet{n}", "layers") for n in ("0_5", "0_75", "1_0", "1_3")]
    specs += [ModelSpec("googlenet", "inception5b"), ModelSpec("inception_v3", "Mixed_7c")]
    specs += [ModelSpec("vit_b_16", "encoder.layers.encoder_layer_11", (224, 224)),
              ModelSpec("vit_b_32", "encoder.layers.encoder_layer_11", (224, 224)),
              ModelSpec("vit_l_16", "encoder.layers.encoder_layer_23", (224, 224)),
              ModelSpec("vit_l_32", "encoder.layers.encoder_layer_23", (224, 224)),
              ModelSpec("vit_h_14", "encoder.layers.encoder_layer_31", (224, 224)),
              ModelSpec("maxvit_t", "blocks.3", (224, 224))]
    specs += [ModelSpec(n, "features") for n in ("swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b")]
    return {s.name: s for s in specs}


#: Every supported model, by name.
MODELS: dict[str, ModelSpec] = _specs()


def _weights_enum(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def _labels(name: str) -> list[str]:
    try:
        return list(_weights_enum(name).meta["categories"])
    except Exception:  # a builder without ImageNet metadata: plain indices
        return [str(i) for i in range(1000)]


def _check_name(name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(MODELS), n=4, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}.{hint} Available: {', '.join(sorted(MODELS))}, "
                         "timm:NAME, module:factory or a .onnx file")
    return spec


def cached_weights_path(name: str) -> Path:
    """Where torchvision keeps ``name``'s ImageNet weights once downloaded (torch hub cache)."""
    url = _weights_enum(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def pretrained_state(name: str, what: str, *, allow_download: bool = True) -> dict:
    """The state_dict of torchvision's default weights for builder ``name`` (``what``: ImageNet,
    COCO... for messages), from the torch hub cache, downloaded there quietly when missing.

    Raises:
        WeightsUnavailableError: neither cached nor downloadable (offline).
    """
    w = _weights_enum(name)
    cached = cached_weights_path(name)
    if not cached.exists() and not allow_download:
        raise WeightsUnavailableError(
            f"{what} weights for {name} are not in the cache ({cached}) and downloading is off; "
            "pass --weights none to run the untrained network, or --weights FILE.pth"
        )
    try:
        if not cached.exists():
            # Downloaded quietly: torch hub's "Downloading: ..." line would be a stray line on a
            # CLI's stderr (and a misleading one offline).
            cached.parent.mkdir(parents=True, exist_ok=True)
            match = torch.hub.HASH_REGEX.search(cached.name)
            torch.hub.download_url_to_file(w.url, str(cached), match.group(1) if match else None, progress=False)
        return w.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, OSError, SSL errors, HTTP errors...
        raise WeightsUnavailableError(
            f"could not get {what} weights for {name} ({type(exc).__name__}: {exc}); "
            "connect once to download them into the torch cache, or pass --weights none "
            "(untrained network) or --weights FILE.pth"
        ) from exc


def load_torchvision(name: str, weights: str = "imagenet", *, allow_download: bool = True) -> LoadedModel:
    """Build a torchvision classifier by name, in eval mode on the CPU.

    Args:
        name: a key of :data:`MODELS`.
        weights: ``imagenet`` (torchvision's weights API and cache), ``none`` (random init), or the
            path of a state_dict file (loaded with ``weights_only=True``).
        allow_download: for ``imagenet``, try to download weights missing from the cache.

    Raises:
        ModelError: unknown name.
        WeightsUnavailableError: ``imagenet`` weights are neither cached nor downloadable
            (offline). Callers may catch it and fall back to ``weights="none"``.
        WeightsError: a state_dict file that is missing, unreadable or does not fit the model.
    """
    from torchvision.models import get_model

    spec = _check_name(name)
    labels = _labels(name)
    with warnings.catch_warnings():  # GoogLeNet's and Inception's notice of their init scheme, for users of torchvision
        warnings.filterwarnings("ignore", "The default weight initialization", FutureWarning)
        net = get_model(name, weights=None)
    trained = weights != "none"
    if weights == "imagenet":
        net.load_state_dict(pretrained_state(name, "ImageNet", allow_download=allow_download))
    elif weights != "none":
        weights = load_state_file(net, weights, name)
    net.eval()
    return LoadedModel(net=net, spec=spec, labels=labels, weights=weights, trained=trained)

