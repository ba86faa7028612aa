"""timm's zoo: ``timm:NAME`` (any timm classifier), its pretrained weights through timm's own cache,
its default layer from the model's feature metadata and its input settings from its pretrained config.

Offline, pretrained weights are looked up in the Hugging Face cache first, so that a model used once
opens with no network, and a model never downloaded fails at once with the same clear fallback as
torchvision's (instead of huggingface_hub's minute of retries).
"""

from __future__ import annotations

import difflib
import socket
from pathlib import Path

from torch import nn

from eigencam_live.errors import ModelError, WeightsUnavailableError

from .layers import find_layer, last_map_layer
from .loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelSpec
from .weights import load_state_file

__all__ = ["PREFIX", "check_timm_name", "load_timm"]

PREFIX = "timm:"
_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _timm():
    try:
        import timm
    except ImportError:  # pragma: no cover - timm is a runtime requirement
        raise ModelError("timm models need the timm package: pip install timm") from None
    return timm


def check_timm_name(name: str) -> str:
    """``name`` (``convnext_tiny`` or ``convnext_tiny.fb_in1k``) if timm knows its architecture.

    Raises:
        ModelError: unknown architecture, with close matches from timm's model list.
    """
    timm = _timm()
    arch = name.split(".", 1)[0]
    if not arch or not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=4, cutoff=0.6)
        hint = f" Did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
        raise ModelError(f"unknown timm model {name!r}.{hint} (`python -c \"import timm; "
                         f"print(timm.list_models('*{arch[:6]}*'))\"` lists them)")
    return name


def load_timm(name: str, weights: str = "imagenet", *, allow_download: bool = True) -> LoadedModel:
    """Build timm's ``name`` in eval mode on the CPU.

    Args:
        name: a timm model name (``timm.list_models()``), with or without a pretrained tag.
        weights: ``imagenet`` (the model's pretrained weights, timm's default tag), ``none``, or a
            state_dict file loaded on top of the architecture.
        allow_download: for ``imagenet``, download weights missing from the cache.

    Raises:
        ModelError: unknown name. WeightsUnavailableError: pretrained weights neither cached nor
        downloadable. WeightsError: a bad state_dict file.
    """
    timm = _timm()
    check_timm_name(name)
    source = PREFIX + name
    try:
        net = timm.create_model(name, pretrained=False)
    except Exception as exc:  # e.g. a pretrained tag timm does not know
        raise ModelError(f"timm cannot build {name!r}: {str(exc).strip().splitlines()[0][:200]}") from None
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    trained = weights != "none"
    if weights == "imagenet":
        net = _pretrained(timm, name, cfg, allow_download)
    elif weights != "none":
        weights = load_state_file(net, weights, source)
    net.eval()
    fixed = tuple(cfg["input_size"][1:]) if cfg.get("fixed_input_size") and cfg.get("input_size") else None
    loaded = LoadedModel(
        net=net, spec=ModelSpec(source, "", fixed), labels=_labels(timm, net), weights=weights, trained=trained,
        mean=tuple(cfg.get("mean") or IMAGENET_MEAN), std=tuple(cfg.get("std") or IMAGENET_STD),
        prefix_tokens=getattr(net, "num_prefix_tokens", None), headless=getattr(net, "num_classes", None) == 0,
    )
    if fixed is None and cfg.get("min_input_size"):  # a size it needs (a sweep of timm's zoo: halo attention's
        from .factory import _PROBE, one_size  # failed on every frame at 224 and at 16:9); only these are tried,
        # with a forward pass: on every timm model it made loading seconds longer (a review)

        trained_at = tuple(cfg["input_size"][1:]) if len(cfg.get("input_size") or ()) == 3 else _PROBE
        one_size(loaded, tuple(dict.fromkeys([trained_at, _PROBE])), module=False)
        fixed = loaded.spec.fixed_input
    loaded.spec = ModelSpec(source, timm_layer(loaded), fixed)
    return loaded


def timm_own(net: nn.Module) -> dict | None:
    """What a timm model built by its caller (``timm.create_model``, handed to the engine) says of
    itself, as :func:`load_timm` reads it for one built by name: ``{"mean", "std", "labels",
    "fixed"}``; ``None`` for any other module (a library trial: a handed ViT was fed ImageNet's
    normalisation, not its own 0.5s, and named its classes by number)."""
    cfg = getattr(net, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or not type(net).__module__.startswith("timm."):
        return None
    import timm

    fixed = tuple(cfg["input_size"][1:]) if cfg.get("fixed_input_size") and cfg.get("input_size") else None
    return {"mean": tuple(cfg["mean"]) if cfg.get("mean") else None, "std": tuple(cfg["std"]) if cfg.get("std") else None,
            "labels": _labels(timm, net), "fixed": fixed}


def timm_layer(loaded: LoadedModel) -> str:
    """The layer a timm model's maps are read from by default: the last feature stage from timm's
    ``feature_info``, or the last layer that gives a map."""
    info = getattr(loaded.net, "feature_info", None)
    try:
        module = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
        found = find_layer(loaded.net, module)
        # A ModuleList is never called itself (CoaT's serial_blocks4): its last member's output is the stage's.
        while isinstance(found, (nn.ModuleList, nn.ModuleDict)) and len(found):
            name, found = list(found.named_children())[-1]
            module = f"{module}.{name}"
        return module
    except Exception:  # no metadata, or a name that is not a module here
        return last_map_layer(loaded, loaded.spec.fixed_input)


def _labels(timm, net) -> list[str]:
    """ImageNet-1k class names (timm ships them) when the model has those 1000 classes, else []."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(net)
        if not subset:
            return []
        info = ImageNetInfo(subset)
        if info.num_classes() != getattr(net, "num_classes", None):
            return []
        return [info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes())]
    except Exception:  # an older timm or an unusual head: class indices
        return []


def _cached_file(cfg: dict) -> str | None:
    """The pretrained weights' file in the Hugging Face (or torch hub) cache, if there."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ([cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else []) + list(_HUB_FILES):
            found = try_to_load_from_cache(hub_id, filename)
            if isinstance(found, str):
                return found
    url = cfg.get("url")
    if url:
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if path.is_file():
            return str(path)
    return None


def _online(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _pretrained(timm, name: str, cfg: dict, allow_download: bool):
    if not cfg.get("hf_hub_id") and not cfg.get("url") and not cfg.get("file"):
        raise WeightsUnavailableError(f"timm has no pretrained weights for {name}; pass --weights none "
                                      "(untrained network) or --weights FILE.pth")
    cached = _cached_file(cfg)
    hint = ("connect once to download them into the Hugging Face cache, or pass --weights none "
            "(untrained network) or --weights FILE.pth")
    try:
        if cached is not None:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached})
        if not allow_download:
            raise WeightsUnavailableError(f"pretrained weights for timm:{name} are not in the cache and "
                                          f"downloading is off; {hint}")
        if not _online():
            raise WeightsUnavailableError(f"pretrained weights for timm:{name} are not in the cache and "
                                          f"huggingface.co cannot be reached (offline?); {hint}")
        return timm.create_model(name, pretrained=True)
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # HTTP errors, a corrupt cache file, ...
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailableError(f"could not get pretrained weights for timm:{name} ({text}); {hint}") from None
