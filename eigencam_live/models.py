"""Model zoo: torchvision classifiers by name, their weights, default target layers and labels.

Also the one place where forward hooks are registered: :class:`ActivationCapture`, a context
manager that always removes its hooks and restores ``.training``, even when the forward raises.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import LayerNotFoundError, ModelError, WeightsError, WeightsUnavailableError

__all__ = [
    "MODELS",
    "ActivationCapture",
    "LoadedModel",
    "ModelSpec",
    "feature_layers",
    "find_layer",
    "load_model",
    "to_feature_map",
]

# Layouts of a target layer's output.
NCHW, NHWC, TOKENS = "nchw", "nhwc", "tokens"


@dataclass(frozen=True)
class ModelSpec:
    """How to use one torchvision architecture for Eigen-CAM.

    Attributes:
        name: torchvision builder name.
        layer: default target layer, a dotted submodule name (the last conv stage).
        layout: layout of feature maps inside the network: ``nchw`` (CNNs), ``nhwc`` (Swin) or
            ``tokens`` (ViT: ``(B, 1 + h*w, D)`` with a class token).
        fixed_input: ``(H, W)`` the network requires, or ``None`` when any size works.
    """

    name: str
    layer: str
    layout: str = NCHW
    fixed_input: tuple[int, int] | None = None


def _specs() -> dict[str, ModelSpec]:
    specs: list[ModelSpec] = []
    for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
              "wide_resnet50_2", "wide_resnet101_2"):
        specs.append(ModelSpec(n, "layer4"))
    # VGG: the ReLU after the last conv, before the final max-pool halves the map.
    specs += [ModelSpec("vgg16", "features.29"), ModelSpec("vgg16_bn", "features.42"),
              ModelSpec("vgg19", "features.35"), ModelSpec("vgg19_bn", "features.51")]
    for n in ("densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_small",
              "mobilenet_v3_large", "efficientnet_v2_s", "efficientnet_v2_m", "convnext_tiny", "convnext_small",
              "convnext_base"):
        specs.append(ModelSpec(n, "features"))
    specs += [ModelSpec(f"efficientnet_b{i}", "features") for i in range(8)]
    specs += [ModelSpec(n, "trunk_output") for n in ("regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf",
                                                       "regnet_x_800mf")]
    specs += [ModelSpec("vit_b_16", "encoder.layers.encoder_layer_11", TOKENS, (224, 224)),
              ModelSpec("vit_b_32", "encoder.layers.encoder_layer_11", TOKENS, (224, 224))]
    specs += [ModelSpec(n, "features", NHWC) for n in ("swin_t", "swin_s", "swin_v2_t")]
    return {s.name: s for s in specs}


#: Every supported model, by name.
MODELS: dict[str, ModelSpec] = _specs()


@dataclass
class LoadedModel:
    """A ready-to-run model: eval mode, on its device, with its labels and provenance.

    Attributes:
        net: the ``nn.Module`` (eval mode).
        spec: its :class:`ModelSpec`.
        labels: class names, index -> name (ImageNet's 1000 from torchvision's metadata).
        weights: ``imagenet``, ``none`` or the path of a state_dict file.
        trained: ``False`` when the network runs with random weights.
        mean, std: per-channel input normalisation (RGB, on ``[0, 1]`` pixels).
    """

    net: nn.Module
    spec: ModelSpec
    labels: list[str]
    weights: str
    trained: bool
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


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
        raise ModelError(f"unknown model {name!r}.{hint} Available: {', '.join(sorted(MODELS))}")
    return spec


def cached_weights_path(name: str) -> Path:
    """Where torchvision keeps ``name``'s ImageNet weights once downloaded (torch hub cache)."""
    url = _weights_enum(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_model(name: str, weights: str = "imagenet", *, allow_download: bool = True) -> LoadedModel:
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
    if weights == "none":
        net = get_model(name, weights=None)
        trained = False
    elif weights == "imagenet":
        w = _weights_enum(name)
        cached = cached_weights_path(name)
        if not cached.exists() and not allow_download:
            raise WeightsUnavailableError(
                f"ImageNet weights for {name} are not in the cache ({cached}) and downloading is off; "
                "pass --weights none to run the untrained network, or --weights FILE.pth"
            )
        try:
            if not cached.exists():
                # Downloaded quietly: torch hub's "Downloading: ..." line would be a stray line on a
                # CLI's stderr (and a misleading one offline).
                cached.parent.mkdir(parents=True, exist_ok=True)
                match = torch.hub.HASH_REGEX.search(cached.name)
                torch.hub.download_url_to_file(w.url, str(cached), match.group(1) if match else None, progress=False)
            state = w.get_state_dict(progress=False, check_hash=True)
            net = get_model(name, weights=None)
            net.load_state_dict(state)
        except Exception as exc:  # URLError, OSError, SSL errors, HTTP errors...
            raise WeightsUnavailableError(
                f"could not get ImageNet weights for {name} ({type(exc).__name__}: {exc}); "
                "connect once to download them into the torch cache, or pass --weights none "
                "(untrained network) or --weights FILE.pth"
            ) from exc
        trained = True
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path} (expected imagenet, none, or a state_dict .pth file)")
        net = get_model(name, weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsError(f"weights file {path} does not hold a state_dict (got {type(state).__name__})")
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"weights file {path} does not fit {name}: {first}") from exc
        trained = True
        weights = str(path)
    net.eval()
    return LoadedModel(net=net, spec=spec, labels=labels, weights=weights, trained=trained)


def find_layer(net: nn.Module, layer: str) -> nn.Module:
    """The submodule named ``layer`` (dotted path, as in ``named_modules``).

    Raises:
        LayerNotFoundError: with the closest names.
    """
    if layer:
        try:  # walks the dotted path only: the engine resolves its layer on every frame
            return net.get_submodule(layer)
        except AttributeError:
            pass
    modules = dict(net.named_modules())
    names = [n for n in modules if n]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.4)
    hint = f" Closest: {', '.join(close)}." if close else ""
    raise LayerNotFoundError(f"no layer named {layer!r} in {type(net).__name__}.{hint}")


def to_feature_map(output: torch.Tensor | tuple, layout: str) -> torch.Tensor:
    """A hooked layer's output as a ``(B, C, h, w)`` feature map.

    Args:
        output: the layer's output; tuples/lists take their first tensor.
        layout: ``nchw``, ``nhwc`` (Swin stages) or ``tokens`` (``(B, T, D)``, a class token
            first when ``T - 1`` is a perfect square).

    Raises:
        LayerNotFoundError: the output cannot be read as a spatial map (e.g. a pooled vector).
    """
    if isinstance(output, (tuple, list)):
        output = next((o for o in output if isinstance(o, torch.Tensor)), None)
    if not isinstance(output, torch.Tensor):
        raise LayerNotFoundError(f"layer output is not a tensor (got {type(output).__name__})")
    if output.dim() == 4:
        return output.permute(0, 3, 1, 2) if layout == NHWC else output
    if output.dim() == 3 and layout in (TOKENS, NHWC):
        b, t, d = output.shape
        for skip in (1, 0):
            side = math.isqrt(t - skip)
            if side * side == t - skip and side > 0:
                return output[:, skip:, :].transpose(1, 2).reshape(b, d, side, side)
    raise LayerNotFoundError(
        f"layer output of shape {tuple(output.shape)} is not a spatial feature map "
        "(expected (B, C, H, W), or tokens (B, 1 + h*w, D) for a vision transformer)"
    )


def _all_modules(net: nn.Module) -> list[nn.Module]:
    """``net`` and every submodule, each once (what ``net.modules()`` yields, 5x faster)."""
    out, seen, stack = [], set(), [net]
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        out.append(m)
        stack.extend(c for c in m._modules.values() if c is not None)
    return out


class ActivationCapture:
    """Context manager that records the outputs of named layers during a forward pass.

    On exit every hook is removed and the model's ``.training`` flags are restored, whether or not
    the body raised::

        with ActivationCapture(net, ["layer4"], layout="nchw") as cap:
            logits = net(x)
        fmap = cap.maps["layer4"]      # (B, C, h, w)

    Attributes:
        outputs: raw outputs by layer name.
    """

    def __init__(self, net: nn.Module, layers: list[str] | str, layout: str = NCHW, *, eval_mode: bool = True):
        self.net = net
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        self.layout = layout
        self.eval_mode = eval_mode
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._all: list[nn.Module] = []
        self._training: list[bool] = []
        # Resolve names before touching the model, so a bad name leaves it untouched.
        self._modules = {name: find_layer(net, name) for name in self.layers}

    def __enter__(self) -> ActivationCapture:
        # Runs once per frame: a plain walk over ``_modules`` and flag writes only where a flag
        # changes (``named_modules`` and ``eval()`` cost ~1 ms on a 250-module network).
        self._all = _all_modules(self.net)
        self._training = [m.training for m in self._all]
        if self.eval_mode and any(self._training):
            for m in self._all:
                if m.training:
                    m.training = False
        try:
            for name, module in self._modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self._restore()
            raise
        return self

    def _hook(self, name: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            self.outputs[name] = output

        return hook

    def _restore(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for m, flag in zip(self._all, self._training, strict=True):
            if m.training != flag:
                m.training = flag
        self._all, self._training = [], []

    def __exit__(self, *exc) -> None:
        self._restore()

    @property
    def maps(self) -> dict[str, torch.Tensor]:
        """Captured outputs as ``(B, C, h, w)`` feature maps."""
        return {name: to_feature_map(out, self.layout) for name, out in self.outputs.items()}

    def map(self, name: str | None = None) -> torch.Tensor:
        name = name or self.layers[0]
        if name not in self.outputs:
            raise LayerNotFoundError(f"layer {name!r} was not reached by the forward pass")
        return to_feature_map(self.outputs[name], self.layout)


def feature_layers(model: LoadedModel, size: tuple[int, int] | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """Modules whose output reads as a spatial feature map, in the order their outputs are ready
    during a forward pass (a container after its children).

    Runs one forward pass on a blank image of ``size`` (default ``fixed_input`` or 224x224) on the
    model's device. Returns ``(name, (C, h, w))`` pairs; the default layer is among them.
    """
    net = model.net
    param = next(net.parameters())
    h, w = size or model.spec.fixed_input or (224, 224)
    x = torch.zeros((1, 3, h, w), device=param.device, dtype=param.dtype)
    order: list[tuple[str, tuple[int, ...]]] = []
    names = [n for n, _ in net.named_modules() if n]
    with ActivationCapture(net, names, model.spec.layout) as cap, torch.inference_mode():
        net(x)
    for name, output in cap.outputs.items():  # hooks fire as outputs are ready: forward order
        try:
            fmap = to_feature_map(output, model.spec.layout)
        except LayerNotFoundError:
            continue
        if fmap.shape[-1] * fmap.shape[-2] >= 4:
            order.append((name, tuple(fmap.shape[1:])))
    return order
