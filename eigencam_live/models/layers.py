"""Layers of a network: finding one by name, reading its output as a feature map whatever its
layout, recording outputs with forward hooks, and listing the layers that give maps.

:class:`ActivationCapture` is the one place where forward hooks are registered: a context manager
that always removes its hooks and restores ``.training``, even when the forward raises.
"""

from __future__ import annotations

import difflib
import math
from functools import lru_cache
from typing import NamedTuple

import torch
from torch import nn

from eigencam_live.errors import LayerNotFoundError

from .loaded import LoadedModel

__all__ = ["LEVEL_STRIDE", "ActivationCapture", "Layer", "feature_layers", "find_layer", "last_map_layer",
           "stack_levels", "to_feature_map"]


class Layer(NamedTuple):
    """A layer that gives a feature map: its name, its ``kind`` (module class or ONNX op) and the
    ``(C, h, w)`` of its map for the input size asked about."""

    name: str
    kind: str
    shape: tuple[int, int, int]


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
    hint = f" Closest: {', '.join(close)}." if close else " --list-layers lists them."
    raise LayerNotFoundError(f"no layer named {layer!r} in {type(net).__name__}.{hint}")


def to_feature_map(output: torch.Tensor | tuple, size: tuple[int, int], prefix_tokens: int | None = None,
                   batch: int | None = None) -> torch.Tensor:
    """A layer's output as a ``(B, C, h, w)`` feature map, its layout read from its shape.

    The layout is the one whose grid fits the network input's ``size = (H, W)`` with one stride on
    both axes (``h ~ H / s`` and ``w ~ W / s`` within a cell):

    - ``(B, C, h, w)`` (CNNs) or ``(B, h, w, C)`` (Swin, timm's NHWC stages); NCHW when both fit;
    - tokens ``(B, p + h*w, D)`` (ViT, DeiT, BEiT, EVA...): ``p`` class/register/distillation
      tokens first, dropped, the rest reshaped to the patch grid (square or not; of at most 64
      pixels a token, and of a usual stride where ``D`` is no multiple of 8, as a transformer's
      always is, unless the model declares its prefix tokens: a detector's outputs are no tokens);
    - a map flattened channels first, ``(B, C, h*w)`` (before a CNN's attention block, an MLP
      mixing tokens), on a grid of stride 8, 16, 32 or 64, where the tokens' reading fits no grid
      of a usual stride (those and 2, 4, 14), or whose width is no multiple of 8 (a transformer's
      always is): 576 tokens of 49 values at 224x224 are a 7x7 map of 576 channels (a 24x24 grid
      has stride 9.3), 256 tokens of 196 values a 14x14 map; a token MLP's hidden width (256 =
      16x16, stride 14) is no map; a model that declares prefix tokens (timm's ViTs) gives tokens;
    - a dict or list of maps (a detector's FPN levels, SSD's feature maps): brought to one grid and
      stacked along channels (:func:`stack_levels`).

    Args:
        output: the layer's output; tuples/lists take their first tensor.
        size: the network input's ``(H, W)``.
        prefix_tokens: the model's own count of prefix tokens, preferred when it fits.
        batch: the number of images the network got: an output with another first dimension (one
            map per detection proposal, say) is refused.

    Raises:
        LayerNotFoundError: the output cannot be read as a map on the input's grid (e.g. a pooled
            vector); the message says what arrived and what would work.
    """
    arrived = type(output).__name__
    levels = list(output.values()) if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else None
    if levels is not None:
        maps = [o for o in levels if isinstance(o, torch.Tensor) and o.dim() == 4]
        if len(maps) >= 2 and len(maps) == len(levels):  # pyramid levels (an FPN, SSD's maps)
            return stack_levels([to_feature_map(m, size, batch=batch) for m in maps], size)
        tensors = [o for o in levels if isinstance(o, torch.Tensor)]
        # the first of the images' own (TNT's blocks return their 196 patches' inner pixels first, then
        # the image's tokens: a sweep of timm's zoo found the model refused)
        output = next((o for o in tensors if batch is None or o.dim() < 3 or o.shape[0] == batch), tensors[0] if tensors else None)
    if not isinstance(output, torch.Tensor):
        raise LayerNotFoundError(f"layer output is not a tensor (got {arrived}); "
                                 "choose a layer that outputs a feature map")
    height, width = int(size[0]), int(size[1])
    if batch is not None and output.dim() >= 3 and output.shape[0] != batch:
        raise LayerNotFoundError(
            f"layer output of shape {tuple(output.shape)} holds {output.shape[0]} maps for {batch} image(s) "
            "(one per detection proposal or box?): choose a layer with one map per image")
    if output.dim() == 4:
        _, d1, d2, d3 = output.shape
        # channels last where only that reading is the input's grid; one of an unusual stride only where
        # the first reading is not a cell or two off it (squeezenet's unpadded convolutions: 32
        # channels of a 54x94 map read as a 32x54 grid of stride 7, a review)
        if (_fits(d1, d2, height, width) and not _fits(d2, d3, height, width)
                and (_usual_stride((0, d1, d2), height, width) or not _near(d2, d3, height, width))):
            return output.permute(0, 3, 1, 2)  # (B, h, w, C) -> (B, C, h, w), a view
        if _fits(d2, d3, height, width) or _near(d2, d3, height, width):
            return output  # NCHW; a grid a cell or two off the input's (unpadded convolutions) too
        if _near(d1, d2, height, width):
            return output.permute(0, 3, 1, 2)
    if output.dim() == 3:
        b, t, d = output.shape
        grid = _token_grid(t, height, width, prefix_tokens)
        if grid is not None and prefix_tokens is None and d % 8 and not _usual_stride(grid, height, width):
            grid = None  # a transformer's width is a multiple of 8: 11 values an anchor are YOLOv5's predictions
        # or a map flattened channels first, (B, C, h*w): never with prefix tokens, nor from a token model
        flat = None if prefix_tokens is not None or (grid is not None and grid[0]) else _token_grid(d, height, width, 0)
        if (flat is not None and _usual_stride(flat, height, width, _MAP_STRIDES)
                and (grid is None or not _usual_stride(grid, height, width) or d % 8)):
            return output.reshape(b, t, flat[1], flat[2])
        if prefix_tokens is None and not d % 8 and (grid is None or not _usual_stride(grid, height, width)):
            grid = _registers_grid(t, height, width) or grid  # a ViT with register tokens that does not count them
        if grid is not None:
            skip, h, w = grid
            return output[:, skip:, :].transpose(1, 2).reshape(b, d, h, w)
    raise LayerNotFoundError(
        f"layer output of shape {tuple(output.shape)} is not a feature map for a {height}x{width} input: "
        "expected (B, C, h, w) or (B, h, w, C) maps, or tokens (B, prefix + h*w, D) on the patch grid "
        "(choose a convolution stage or a transformer block)"
    )


#: The stride of the grid pyramid levels are stacked on: the level nearest to it. 32 is the grid a
#: classifier's map has (its last stage), fine enough to tell objects apart box by box, and it keeps
#: Eigen-CAM within a few per cent of the detector's forward pass: SSDlite's six maps on its 20x20
#: (stride 16) level made Eigen-CAM cost 17 % of the forward on a 2-core CPU, on its 10x10 level 3 %
#: (an FPN's finest level, stride 4, would cost more than the detector).
LEVEL_STRIDE = 32


def stack_levels(maps: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """``(B, C_i, h_i, w_i)`` maps of one image pyramid over a ``size = (H, W)`` input ->
    ``(B, sum C_i, h, w)`` on the grid of the level whose stride is nearest :data:`LEVEL_STRIDE`
    (the finer of two as near): finer levels area-averaged down to it, coarser ones bilinearly
    enlarged (cell centres aligned)."""
    sizes = sorted({tuple(m.shape[-2:]) for m in maps}, key=lambda hw: -hw[0] * hw[1])  # finest first
    grid = min(sizes, key=lambda hw: abs(math.log(max(size[0] / hw[0], 1e-9) / LEVEL_STRIDE)))
    out = []
    for m in maps:
        hw = tuple(m.shape[-2:])
        if hw == grid:
            out.append(m)
        elif hw[0] * hw[1] > grid[0] * grid[1]:
            out.append(torch.nn.functional.adaptive_avg_pool2d(m, grid))
        else:
            out.append(torch.nn.functional.interpolate(m, size=grid, mode="bilinear", align_corners=False))
    return torch.cat(out, dim=1)


_MAX_PREFIX = 2  # class and distillation tokens; register tokens only where the model counts them
_MIN_TOKEN_GRID = 9  # 3x3: fewer tokens are a model's outputs (boxes, classes), not a patch grid
#: A patch grid coarser than this (pixels a token) is a model's outputs read as tokens: a one-class
#: YOLO's (1, 65, 8400) predictions were 8400 channels on an 8x8 grid behind a "class token" at 640x640.
_MAX_TOKEN_STRIDE = 64


def _near(h: int, w: int, height: int, width: int) -> bool:
    """Whether an ``h x w`` grid is within two cells of ``(height / s, width / s)`` for one stride."""
    if h < 1 or w < 1 or abs(math.log(h * width / (w * height))) > math.log(2):
        return False  # (not a grid of another shape: YOLO's (1, 1, 4, 8400) box distances are no 1x4 grid)
    s = (height + width) / (h + w)
    return max(abs(h - height / s), abs(w - width / s)) <= 2.0


def _fits(h: int, w: int, height: int, width: int) -> bool:
    """Whether an ``h x w`` grid is the input's grid for one integer stride ``s``: ``h, w`` equal to
    ``height / s, width / s`` both rounded down (unpadded convolutions, patch embeddings) or both
    rounded up (padded ones)."""
    if h < 1 or w < 1 or h > height or w > width:
        return False
    # floor(H / s) == h  <=>  H // (h + 1) < s <= H // h
    if max(height // (h + 1), width // (w + 1)) + 1 <= min(height // h, width // w):
        return True
    # ceil(H / s) == h  <=>  ceil(H / h) <= s < ceil(H / (h - 1))  (no upper bound for h == 1)
    lo = max(-(-height // h), -(-width // w))
    hi = min(-(-height // (h - 1)) - 1 if h > 1 else lo, -(-width // (w - 1)) - 1 if w > 1 else lo)
    return lo <= hi


#: The strides of real networks' grids: a CNN's stages, a ViT's patches (8, 14, 16, 32).
_USUAL_STRIDES = (2, 4, 8, 14, 16, 32, 64)
#: Those of the maps a network flattens channels first (its deeper stages).
_MAP_STRIDES = (8, 16, 32, 64)


def _usual_stride(grid: tuple[int, int, int], height: int, width: int, strides: tuple[int, ...] = _USUAL_STRIDES) -> bool:
    """Whether ``grid = (prefix, h, w)`` is the input's grid for one of ``strides`` (``H / s`` and
    ``W / s`` both rounded down or both rounded up)."""
    _, h, w = grid
    return any((height // s, width // s) == (h, w) or (-(-height // s), -(-width // s)) == (h, w) for s in strides)


@lru_cache(maxsize=256)
def _token_grid(tokens: int, height: int, width: int, prefix: int | None) -> tuple[int, int, int] | None:
    """``(prefix, h, w)`` with ``prefix + h * w == tokens`` and ``h x w`` the input's grid (at least
    3x3): the model's own prefix count when it says (timm's ``num_prefix_tokens``: class, register
    and distillation tokens) and it fits, else 0, 1 or 2 (CaiT and XCiT count the class token they
    join only in their last blocks: the blocks before were no map, and the models did not load);
    for one prefix count, the grid whose aspect is closest to the input's."""
    order = list(range(min(tokens, _MAX_PREFIX + 1)))
    if prefix is not None and 0 <= prefix < tokens:
        order = [prefix, *(k for k in order if k != prefix)]
    for skip in order:
        n = tokens - skip
        grids = [(h, n // h) for h in range(1, n + 1) if n % h == 0 and n >= _MIN_TOKEN_GRID]
        grids = [g for g in grids if _fits(g[0], g[1], height, width)
                 and min(height / g[0], width / g[1]) <= _MAX_TOKEN_STRIDE]
        if grids:
            h, w = min(grids, key=lambda g: abs(math.log(g[0] * width / (g[1] * height))))
            return skip, h, w
    return None


#: Prefix tokens of a ViT that carries registers behind its class token ("Vision Transformers Need
#: Registers": 2, 4, 8 or 16 of them). Only these: a detector's 100 queries at 224x384 are no 16
#: "registers" before a 7x12 grid (a review).
_REGISTER_PREFIXES = (3, 5, 9, 17)
#: The patch sizes of ViTs: a grid behind registers must be of one of them, exactly.
_PATCHES = (8, 14, 16, 32)


def _registers_grid(tokens: int, height: int, width: int) -> tuple[int, int, int] | None:
    """``(prefix, h, w)`` for tokens behind a class token and 2, 4, 8 or 16 registers
    (:data:`_REGISTER_PREFIXES`; DINOv2's four...) of a model that does not count them (no
    ``num_prefix_tokens``), on a grid of a ViT's patch size; the fewest such tokens. Only where no
    reading with 0 to 2 of them is of a usual stride (a library trial: with 5, a ViT's blocks read
    as no map, its patch embedding taken for its default layer)."""
    for skip in _REGISTER_PREFIXES:
        n = tokens - skip
        for s in _PATCHES:
            for h, w in ((height // s, width // s), (-(-height // s), -(-width // s))):
                if h * w == n and n >= _MIN_TOKEN_GRID:
                    return skip, h, w
    return None


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

        with ActivationCapture(net, ["layer4"]) as cap:
            logits = net(x)
        raw = cap.outputs["layer4"]    # the layer's output as it came

    Args:
        copy: keep a copy of each tensor output, not the tensor itself: a layer whose output the
            network then changes in place (a BatchNorm before ``ReLU(inplace=True)`` or
            ``out += identity``) would otherwise give the later values. ``False`` where only
            shapes are wanted.

    Attributes:
        outputs: raw outputs by layer name.
    """

    def __init__(self, net: nn.Module, layers: list[str] | str, *, eval_mode: bool = True, copy: bool = True):
        self.net = net
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        self.eval_mode = eval_mode
        self.copy = copy
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
            # A module called more than once (a shared activation) keeps its last output, filed
            # where that output was made: ``outputs`` stays in the order outputs were last ready.
            self.outputs.pop(name, None)
            self.outputs[name] = output.clone() if self.copy and isinstance(output, torch.Tensor) else output

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

    def map(self, size: tuple[int, int], name: str | None = None, prefix_tokens: int | None = None,
            batch: int | None = None) -> torch.Tensor:
        """Layer ``name``'s output (default: the first) as a ``(B, C, h, w)`` map, for a network
        input of ``size = (H, W)`` and ``batch`` images (:func:`to_feature_map`)."""
        name = name or self.layers[0]
        if name not in self.outputs:
            raise LayerNotFoundError(f"layer {name!r} was not reached by the forward pass")
        return to_feature_map(self.outputs[name], size, prefix_tokens, batch)


def feature_layers(model: LoadedModel, size: tuple[int, int] | None = None) -> list[Layer]:
    """Modules whose output reads as a spatial feature map, in the order their outputs are ready
    during a forward pass (a container after its children).

    Runs one forward pass on a blank image of ``size`` (default ``fixed_input`` or 224x224) on the
    model's device. The default layer is among them when it gives a map.
    """
    net = model.net
    param = next(net.parameters(), None)
    h, w = size or model.spec.fixed_input or (224, 224)
    x = torch.zeros((1, model.channels, h, w), device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None else torch.float32)
    modules = {n: m for n, m in net.named_modules() if n}
    with ActivationCapture(net, list(modules), copy=False) as cap, torch.inference_mode():
        net(x)
    found: list[Layer] = []
    for name, output in cap.outputs.items():  # hooks fire as outputs are ready: forward order
        try:
            fmap = to_feature_map(output, (h, w), model.prefix_tokens, batch=1)
        except LayerNotFoundError:
            continue
        if fmap.shape[-1] * fmap.shape[-2] >= 4:
            found.append(Layer(name, type(modules[name]).__name__, tuple(int(d) for d in fmap.shape[1:])))
    return found


def last_map_layer(model: LoadedModel, size: tuple[int, int] | None = None) -> str:
    """The last layer (in forward order) whose output is a spatial map: before global pooling for a
    CNN, the last block for a transformer. The default layer of a network with no metadata."""
    layers = feature_layers(model, size)
    if not layers:
        raise LayerNotFoundError(f"{model.spec.name}: no layer gives a spatial feature map "
                                 "(Eigen-CAM needs a convolution stage or transformer tokens)")
    return layers[-1].name  # a container's hook fires after its children's: the outermost name
