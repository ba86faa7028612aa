"""Command-line options shared by the front ends (``annotate`` and the desktop app).

Defaults come from :class:`~eigencam_live.engine.EngineConfig` and
:class:`~eigencam_live.render.RenderConfig`, so every front end starts from the same settings.
Values are checked by those dataclasses (one :class:`~eigencam_live.errors.ConfigError` naming the
field), not by argparse, so the message is the same whichever front end received it.
"""

from __future__ import annotations

import argparse
import copy
import sys

from .backends import BACKENDS
from .cam import METHODS
from .config import ONNX_WEIGHTS
from .engine import DEVICES, PRECISIONS, Engine, EngineConfig
from .errors import ConfigError, EigenCamError, LayerNotFoundError
from .models import Layer, model_kind
from .render import COLORMAPS, VIEWS, RenderConfig

__all__ = [
    "OneLineParser",
    "add_engine_options",
    "add_render_options",
    "cpu_cores",
    "engine_config_from_args",
    "headless_threads",
    "network_threads",
    "print_layers",
    "quiet_native_logs",
    "render_config_from_args",
    "typed_options",
]

_ENGINE = EngineConfig()
_RENDER = RenderConfig()


def typed_options(parser: argparse.ArgumentParser, argv: list[str], *, intermixed: bool = False) -> set[str]:
    """Destinations of the options the user actually typed, in every form argparse takes
    (``--component=2``, ``-k2``, ``--comp 2``), whatever their value (``--score 0.5`` is typed even
    though 0.5 is the default): ``argv`` parsed again with no defaults, so only what was given is
    set. ``argv`` must already have parsed (``intermixed``: with ``parse_intermixed_args``)."""
    bare = copy.deepcopy(parser)  # argparse has no public API for "was this given"
    for action in bare._actions:
        action.default = argparse.SUPPRESS
    return set(vars(bare.parse_intermixed_args(argv) if intermixed else bare.parse_args(argv)))


class OneLineParser(argparse.ArgumentParser):
    """An option parser whose mistakes are one line (what was wrong, where to read what is
    allowed) and exit code 2, not argparse's usage block of thirty lines above the line that matters."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        return super().parse_known_args(self._numbers_joined(sys.argv[1:] if args is None else list(args)), namespace)

    def _numbers_joined(self, argv: list[str]) -> list[str]:
        """``--mean 0.5 0.5 0.5`` as ``--mean=0.5,0.5,0.5`` and ``--mean 0.5`` as ``--mean=0.5``: one
        number or three, for argparse, whose ``nargs="+"`` would take the inputs after them too."""
        longs = [o for o in self._option_string_actions if o.startswith("--")]
        out, i = [], 0
        while i < len(argv):
            token = argv[i]
            out.append(token)
            i += 1
            if token == "--":
                return out + argv[i:]
            option, joined, first = token.partition("=")
            named = [o for o in longs if o.startswith(option)] if option.startswith("--") else []
            if option in _NUMBER_LISTS or (len(named) == 1 and named[0] in _NUMBER_LISTS):
                values = first.split(",") if joined else []  # --mean=0.5 0.5 0.5 too
                if joined and not (len(values) == 1 and _is_number(first)):
                    continue  # --mean=0.5,0.5,0.5 whole, or a mistake argparse will name: nothing to join
                while i < len(argv) and len(values) < 3 and _is_number(argv[i]):
                    values.append(argv[i])
                    i += 1
                more = 0
                while i + more < len(argv) and _is_number(argv[i + more]):
                    more += 1
                if more:  # a fourth number is a mistake, not an input named "0.2"
                    self.error(f"{option if option in _NUMBER_LISTS else named[0]} takes one number or three (R G B), "
                               f"got {len(values) + more}: {' '.join(values + argv[i:i + more])} (an input named as a number "
                               "goes after --)")
                if values:
                    out[-1] = f"{option}={','.join(values)}"
        return out


#: Options that take one number or three (R G B; one for a grey network).
_NUMBER_LISTS = ("--mean", "--std")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(text: str) -> tuple[float, ...]:
    """``0.5`` or ``0.485,0.456,0.406`` (joined by :meth:`OneLineParser.parse_known_args`)."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one number or three (R G B). Got {text!r}") from None


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--model --weights --layer --component --method --short-side --device --backend
    --precision --smoothing --top-k --no-optimize`` (defaults: :class:`EngineConfig`'s)."""
    g = parser.add_argument_group("model and Eigen-CAM")
    g.add_argument("--model", "-m", default=_ENGINE.model, metavar="NAME",
                   help=f"a torchvision classifier or detector (default: {_ENGINE.model}; e.g. resnet50, "
                        "efficientnet_b0, fasterrcnn_mobilenet_v3_large_320_fpn), timm:NAME (timm:convnext_tiny), "
                        "your own network as package.module:factory (mynet:build, from the current folder), "
                        "or an .onnx file")
    g.add_argument("--weights", default=_ENGINE.weights, metavar="imagenet|none|FILE",
                   help="imagenet (torchvision cache; without it the untrained network runs, with a warning), "
                        "none (random weights), or a state_dict .pth file (default: %(default)s)")
    g.add_argument("--layer", default=_ENGINE.layer, metavar="NAME",
                   help="target layer, a dotted module name (default: the model's last conv stage)")
    g.add_argument("--list-layers", action="store_true",
                   help="print the model's layers that give a feature map, with their shapes, and exit")
    g.add_argument("--labels", default=None, metavar="FILE.txt",
                   help="class names, one a line (default: the model's own; class indices for an .onnx file)")
    g.add_argument("--mean", type=_numbers, default=None, metavar="R G B",
                   help="input normalisation mean of [0, 1] pixels, one number for a grey (1-channel) network "
                        "(default: the model's; ImageNet's for .onnx)")
    g.add_argument("--std", type=_numbers, default=None, metavar="R G B",
                   help="input normalisation std of [0, 1] pixels, one number for a grey (1-channel) network "
                        "(default: the model's; ImageNet's for .onnx)")
    g.add_argument("--component", "-k", type=int, default=_ENGINE.component, metavar="K",
                   help="principal component to show, 1 = first (default: %(default)s)")
    g.add_argument("--method", default=_ENGINE.method, choices=METHODS,
                   help="decomposition: exact, randomized, or auto (default: %(default)s)")
    g.add_argument("--short-side", type=int, default=_ENGINE.short_side, metavar="PX",
                   help="network input's short side in pixels, rounded to a multiple of 32 (the networks' "
                        "stride); the whole frame is resized (default: %(default)s)")
    g.add_argument("--device", default=_ENGINE.device, choices=DEVICES,
                   help="auto = CUDA when available (default: %(default)s)")
    g.add_argument("--backend", default=_ENGINE.backend, choices=BACKENDS,
                   help="what runs the network: auto = ONNX Runtime on the CPU (exported on first use, cached), "
                        "torch on CUDA (default: %(default)s)")
    g.add_argument("--precision", default=_ENGINE.precision, choices=PRECISIONS,
                   help="auto = fp16 on CUDA, fp32 on CPU (default: %(default)s)")
    g.add_argument("--smoothing", type=float, default=_ENGINE.smoothing, metavar="S",
                   help="temporal smoothing of the maps in [0, 1), 0 = off (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=_ENGINE.top_k, metavar="N",
                   help="number of predictions kept per frame (default: %(default)s)")
    g.add_argument("--score", type=float, default=_ENGINE.score, metavar="S",
                   help="detectors: the lowest score of a box kept and drawn, in [0, 1] (default: %(default)s)")
    g.add_argument("--no-optimize", dest="optimize", action="store_false", default=_ENGINE.optimize,
                   help="with --backend torch on the CPU, run the network eagerly instead of through a traced, "
                        "frozen copy (built and checked on the first frame of each input size)")


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--alpha --colormap --view`` (defaults: :class:`RenderConfig`'s)."""
    g = parser.add_argument_group("drawing")
    g.add_argument("--alpha", "-a", type=float, default=_RENDER.alpha, metavar="A",
                   help="heatmap opacity in [0, 1] (default: %(default)s)")
    g.add_argument("--colormap", default=_RENDER.colormap, choices=list(COLORMAPS),
                   help="(default: %(default)s)")
    g.add_argument("--view", default=_RENDER.view, choices=VIEWS,
                   help="overlay, side-by-side (frame | overlay), stacked (frame above overlay), heatmap alone, or "
                        "original (default: %(default)s)")
    g.add_argument("--no-boxes", dest="boxes", action="store_false", default=_RENDER.boxes,
                   help="detectors: do not draw the boxes")
    g.add_argument("--in-boxes", action="store_true", default=_RENDER.in_boxes,
                   help="detectors: renormalise the map inside each box (min-max per box), zero outside")


def engine_config_from_args(args: argparse.Namespace, typed: set[str] = frozenset()) -> EngineConfig:
    """The :class:`EngineConfig` the parsed options describe (``typed``: the options the user
    typed, :func:`typed_options`: ``--weights imagenet`` typed is its default, so only they tell it
    was asked for).

    Raises:
        ConfigError: a value outside its range (names the option).
    """
    try:
        if args.layer is not None and not args.layer.strip():
            raise ConfigError("must name a layer (--list-layers lists them); left out, the model's default", field="layer")
        if "weights" in typed and model_kind(args.model) == "onnx":
            raise ConfigError(ONNX_WEIGHTS, field="weights")
        return EngineConfig(
            model=args.model,
            weights=args.weights,
            layer=args.layer or None,
            component=args.component,
            method=args.method,
            short_side=args.short_side,
            device=args.device,
            backend=getattr(args, "backend", _ENGINE.backend),
            precision=args.precision,
            top_k=getattr(args, "top_k", _ENGINE.top_k),
            score=getattr(args, "score", _ENGINE.score),
            smoothing=args.smoothing,
            labels=getattr(args, "labels", None),
            mean=tuple(args.mean) if getattr(args, "mean", None) else None,
            std=tuple(args.std) if getattr(args, "std", None) else None,
            optimize=getattr(args, "optimize", _ENGINE.optimize),
        )
    except ConfigError as exc:
        raise _as_option(exc) from None


def render_config_from_args(args: argparse.Namespace) -> RenderConfig:
    """The :class:`RenderConfig` the parsed options describe.

    Raises:
        ConfigError: a value outside its range (names the option).
    """
    try:
        return RenderConfig(view=args.view, alpha=args.alpha, colormap=args.colormap,
                            boxes=getattr(args, "boxes", _RENDER.boxes), in_boxes=getattr(args, "in_boxes", _RENDER.in_boxes))
    except ConfigError as exc:
        raise _as_option(exc) from None


def _as_option(exc: ConfigError) -> ConfigError:
    """The same error named by the flag the user typed: ``--short-side: must be ...``."""
    if exc.field is None:
        return exc
    return ConfigError(f"--{exc.field.replace('_', '-')}: {exc.reason}")


def list_layers(config: EngineConfig, out=None, frame_hw: tuple[int, int] | None = None) -> None:
    """``--list-layers`` for the model ``config`` names (:func:`print_layers`); its ``layer``, if one
    is named, is checked after the list, not instead of it (the list is what one looks in for the
    layer that gives a map).

    Raises:
        EigenCamError: the model cannot be built, or the named layer gives no map.
    """
    from dataclasses import replace

    refused = None
    try:
        engine = Engine(replace(config, layer=None), fallback_untrained=True)
    except LayerNotFoundError as exc:  # the default layer gives no map at this size: the others are listed
        engine = Engine(replace(config, layer=None, short_side=_ENGINE.short_side), fallback_untrained=True)
        refused = exc
    if config.layer is not None:  # the default's size is then no matter
        try:
            engine.reconfigure(layer=config.layer, short_side=config.short_side)  # marked "<- in use" where it gives a map
            refused = None
        except EigenCamError as exc:
            refused = exc
    print_layers(engine, out, frame_hw, config.short_side)
    if refused is not None:
        raise refused


def print_layers(engine: Engine, out=None, frame_hw: tuple[int, int] | None = None,
                 short_side: int | None = None) -> None:
    """``--list-layers``: every layer that gives a feature map as a tree (children indented under
    their container, in the order the network runs them) with its type and its ``CxHxW`` map for the
    input size in use (at ``short_side``, default the engine's); the default and the layer in use
    marked."""
    import sys

    out = out or sys.stdout
    default, current = engine.loaded.spec.layer, engine.layer
    layers = layer_tree(engine.feature_layers(frame_hw, short_side))
    size = engine.input_size(frame_hw, short_side)
    print(f"{engine.config.model}: layers that give a feature map, for a {size[1]}x{size[0]} input "
          "(CxHxW; --layer NAME picks one)", file=out)
    width = max((2 * depth + len(layer.name) for depth, layer in layers), default=0)
    kind_w = max((len(layer.kind) for _, layer in layers), default=0)
    for depth, layer in layers:
        mark = "  <- default" if layer.name == default else ""
        mark += "  <- in use" if layer.name == current and current != default else ""
        label = "  " * depth + layer.name
        print(f"{label:<{width}}  {layer.kind:<{kind_w}}  {'x'.join(str(d) for d in layer.shape)}{mark}", file=out)


def layer_tree(layers: list[Layer]) -> list[tuple[int, Layer]]:
    """Layers in tree order, each with its depth: a container first, then its children (by their
    dotted names; an ONNX file's flat node outputs stay flat), in the order the network runs them."""
    names = {layer.name for layer in layers}
    rank = {layer.name: i for i, layer in enumerate(layers)}

    def parent(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:i]) in names:
                return ".".join(parts[:i])
        return None

    children: dict[str | None, list[Layer]] = {}
    for layer in layers:
        children.setdefault(parent(layer.name), []).append(layer)
    ordered: list[tuple[int, Layer]] = []

    def first_run(layer: Layer) -> int:  # a container runs when its first child does
        kids = children.get(layer.name, [])
        return min([rank[layer.name], *(first_run(k) for k in kids)])

    def walk(key: str | None, depth: int) -> None:
        for layer in sorted(children.get(key, []), key=first_run):
            ordered.append((depth, layer))
            walk(layer.name, depth + 1)

    walk(None, 0)
    return ordered


def quiet_native_logs() -> None:
    """OpenCV's own log lines off (``[ WARN:0@1.5] global grfmt_png.cpp ...`` for a broken image):
    the front ends say what failed in one line of their own. For the process a front end owns."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def network_threads() -> int:
    """CPU threads for the network in the app (and the benchmarks that stand for it): all cores but
    one. The GUI, capture, decoding and encoding threads keep a core, and the network's threads are
    not preempted mid-operation: on a busy 2-core machine, 2 torch threads made a 20 ms forward
    pass take 200+ ms; 1 thread took 23-35 ms. With ONNX Runtime the app on 2 threads halved its
    processing time but its p95 latency came to 2.6x it (1.9x on one thread).
    """
    return max(1, cpu_cores() - 1)


def headless_threads(engine, threads: int = 0) -> int:
    """Share the cores of a headless run (``annotate``) on a CPU ``engine`` between the network
    and the x264 encoder, the two stages that fill them: the network gets ``threads``, or the
    cores the encoder leaves (:attr:`~eigencam_live.engine.Engine.threads`: to ONNX Runtime, or
    to torch, whichever runs it). Returns the encoder's threads: half the cores, at least one, or
    what ``threads`` leaves.

    Each stage on its own cores: with more threads than cores, whichever thread waited on a
    descheduled one lost the time. On 2 cores, mobilenet_v3_large, car-detection.mp4: 1 + 1
    threads gave 77.5 to 81.1 fps end to end (median 79.5 of 5 runs), ONNX Runtime on 2 and x264
    on its own choice (PyAV asks for sliced threads: 2 here) 72.6 to 80.1 (median 75.3 of 7), and
    ONNX Runtime on 2 with x264 on 1 67.3 to 83.8.
    """
    cores = cpu_cores()
    encoder = max(1, cores - threads) if threads else max(1, cores // 2)
    engine.threads = threads or max(1, cores - encoder)  # to what runs the network (Engine.threads)
    return encoder
