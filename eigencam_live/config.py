"""Engine settings and the geometry of a frame: :class:`EngineConfig`, where and in which precision the
network runs, and the network input's size for a frame (the whole frame, never cropped)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .backends import BACKENDS, resolve_backend
from .cam import METHODS
from .errors import ConfigError, plain_numbers
from .models import DETECTORS, MODELS, model_kind

__all__ = ["COMPONENT_MAX", "DEVICES", "MAX_ASPECT", "MAX_INPUT_ASPECT", "PRECISIONS", "STRIDE", "EngineConfig", "input_size",
           "read_labels", "resolve_device", "resolve_dtype", "with_overrides"]

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
STRIDE = 32
#: The highest principal component one may ask for (a map has at most min(H*W, C)).
COMPONENT_MAX = 2048
#: The network input's long side is at most this many times its short side: a wider frame is
#: squeezed along its long side (the map is laid back over the whole frame all the same).
MAX_INPUT_ASPECT = 4
#: Frames more elongated than this are refused (no picture; a 10000x10 strip would be mapped from a
#: 32x128 input whose cells are 80 pixels long and one pixel wide).
MAX_ASPECT = 100
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


#: What is said when weights are given with an ONNX file (``--weights`` typed, or a config's ``weights``).
ONNX_WEIGHTS = "an ONNX file holds its own weights: leave --weights out (none too: its graph is run as it is)"


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; validated on construction (:class:`ConfigError` names the bad field).

    Attributes:
        model: where the network comes from (:mod:`eigencam_live.models`): a torchvision name
            (``resnet50``), ``timm:NAME``, ``package.module:callable`` or the path of an ``.onnx`` file.
        weights: ``imagenet``, ``none`` or a state_dict path (an ONNX file holds its own).
        layer: target layer (dotted module name); ``None`` = the model's default.
        component: 1-based principal component (1 to 5 in the UI; any up to the rank here).
        method: ``auto``, ``exact`` or ``randomized``.
        short_side: the network input's short side in pixels (ignored by fixed-size models).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        backend: ``auto`` (ONNX Runtime on the CPU in fp32, torch elsewhere), ``torch`` or
            ``onnxruntime`` (:mod:`eigencam_live.backends`).
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
        top_k: number of predictions returned.
        score: for a detector, the lowest score of a box returned and drawn.
        smoothing: temporal smoothing of maps in ``[0, 1)``; 0 = off.
        labels: the class names, in the network's order: a text file of them, one a line, or a list
            of str (default: the model's own; an ONNX file's are class indices).
        mean, std: the input normalisation, per RGB channel of ``[0, 1]`` pixels, one number for a
            grey network (default: the model's own; ImageNet's for an ONNX file).
        optimize: with the torch backend on the CPU in fp32, run conv-BN networks through a traced,
            frozen, optimised copy (:mod:`eigencam_live.backends.traced`), checked against the
            eager network when built.
    """

    model: str = "mobilenet_v3_large"
    weights: str = "imagenet"
    layer: str | None = None
    component: int = 1
    method: str = "auto"
    short_side: int = 224
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    top_k: int = 5
    score: float = 0.5
    smoothing: float = 0.0
    labels: str | tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    optimize: bool = True

    def __post_init__(self) -> None:
        for name in ("model", "weights", "labels"):  # a pathlib.Path names a file as its str does
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        plain_numbers(self, ints=("component", "short_side", "top_k"), reals=("score", "smoothing"),
                      sequences=("mean", "std"))
        if not isinstance(self.model, str):  # (a library trial: a module's whole repr in "unknown model")
            raise ConfigError(f"must be a model's name or a file's path (a str); a network itself goes to "
                              f"Engine(model=...). Got {type(self.model).__name__}", field="model")
        if self.layer is not None and not isinstance(self.layer, str):
            raise ConfigError(f"must be a layer's name (a str, as Engine.feature_layers() lists them). Got "
                              f"{type(self.layer).__name__}", field="layer")
        if model_kind(self.model) is None:
            import difflib

            model = self.model if isinstance(self.model, str) else ""
            if model.lower().endswith((".pth", ".ckpt", ".pkl", ".safetensors")):
                raise ConfigError(f"{model!r} is a weights file: a state_dict goes to --weights beside the "
                                  "--model it fits; a whole saved model, load it in a factory (mynet.py:build)",
                                  field="model")
            if model.lower().endswith(".py"):
                raise ConfigError(f"{model!r}: name the factory in it too: {model}:build", field="model")
            call = re.match(r"^(.*[/\\].*):([A-Za-z_]\w*)$", model)
            if call:
                raise ConfigError(f"{model!r}: a factory in a file is named with its .py: {call[1]}.py:{call[2]}",
                                  field="model")

            if model.lower().endswith(".onnx.data"):
                raise ConfigError(f"{model!r} holds the weights of an ONNX file: pass the .onnx file itself",
                                  field="model")
            if os.path.isdir(os.path.expanduser(model)):  # (a trial: said "unknown model", with zoo names)
                raise ConfigError(f"{model!r} is a folder, not a model: an .onnx file, a YOLO .pt/.yaml, a factory "
                                  "(path/to/file.py:callable), timm:NAME or a torchvision name", field="model")
            if os.path.isfile(os.path.expanduser(model)):
                raise ConfigError(f"{model!r} is a file of no kind this opens: an .onnx file, a YOLO .pt/.yaml, or "
                                  "a factory in a .py file (path/to/file.py:callable)", field="model")
            module = model.replace(".", os.sep) + ".py"
            if re.fullmatch(r"[A-Za-z_][\w.]*", model) and os.path.isfile(module):  # ./mynet.py, its factory forgotten
                raise ConfigError(f"{model!r}: {module} is here; name the factory in it too: {model}:build", field="model")
            close = difflib.get_close_matches(str(self.model), [*MODELS, *DETECTORS], n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else " torchvision's: resnet50, mobilenet_v3_large, vit_b_16..."
            raise ConfigError(f"unknown model {self.model!r}.{hint} Or timm:NAME, package.module:callable, "
                              "path/to/file.py:callable, the path of an .onnx file, or a YOLO .pt/.yaml "
                              "(README: Models).", field="model")
        if model_kind(self.model) == "onnx" and self.weights != "imagenet":
            raise ConfigError(ONNX_WEIGHTS, field="weights")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (tuple, list)) or len(value) not in (1, 3)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
                or (name == "std" and min(value) <= 0)
            ):
                shown = " ".join(f"{v:g}" if isinstance(v, (int, float)) else repr(v) for v in value) \
                    if isinstance(value, (tuple, list)) else repr(value)
                raise ConfigError(f"must be three numbers in [0, 1] (R G B, of [0, 1] pixels; one for a grey network)"
                                  f"{', above 0' if name == 'std' else ''}. Got {shown}", field=name)
        if isinstance(self.labels, (list, tuple)) and all(isinstance(name, str) for name in self.labels):
            object.__setattr__(self, "labels", tuple(self.labels))  # (a library trial: a list was refused)
        elif self.labels is not None and not isinstance(self.labels, str):
            raise ConfigError(f"must be the path of a text file or a list of names (str). Got {self.labels!r}",
                              field="labels")
        if not isinstance(self.weights, str) or not self.weights:
            raise ConfigError(f"must be imagenet, none or a file path. Got {self.weights!r}", field="weights")
        _int_field("component", self.component, 1, COMPONENT_MAX)
        if self.method not in METHODS:
            raise ConfigError(f"must be one of {', '.join(METHODS)}. Got {self.method!r}", field="method")
        _int_field("short_side", self.short_side, 32, 4096)
        if self.device not in DEVICES:
            raise ConfigError(f"must be one of {', '.join(DEVICES)}. Got {self.device!r}", field="device")
        if self.backend not in BACKENDS:
            raise ConfigError(f"must be one of {', '.join(BACKENDS)}. Got {self.backend!r}", field="backend")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"must be one of {', '.join(PRECISIONS)}. Got {self.precision!r}", field="precision")
        _int_field("top_k", self.top_k, 1, 1000)
        if isinstance(self.score, bool) or not isinstance(self.score, (int, float)) or not 0.0 <= self.score <= 1.0:
            raise ConfigError(f"must be a number in [0, 1]. Got {self.score!r}", field="score")
        if not isinstance(self.optimize, bool):
            raise ConfigError(f"must be True or False. Got {self.optimize!r}", field="optimize")
        if (
            not isinstance(self.smoothing, (int, float))
            or isinstance(self.smoothing, bool)
            or not 0.0 <= float(self.smoothing) < 1.0
        ):
            raise ConfigError(f"must be a number in [0, 1). Got {self.smoothing!r}", field="smoothing")


def _int_field(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"must be an integer in [{lo}, {hi}]. Got {value!r}", field=name)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. ``cuda`` without a GPU raises :class:`ConfigError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("cuda was requested but no CUDA GPU is available; use cpu or auto", field="device")
    return torch.device(device)


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision == "fp16" and device.type == "cpu":
        # fp16 convolutions are not implemented (or crawl) on most CPUs: bf16 is the CPU half type.
        raise ConfigError("fp16 needs a CUDA device; on the CPU use fp32 or bf16", field="precision")
    return _DTYPES[precision]


def _placement(config: EngineConfig, detector: bool = False) -> tuple[torch.device, torch.dtype, str]:
    """Where, in which precision and by what the network runs: ``(device, dtype, backend)``.
    An ONNX file runs on the CPU (ONNX Runtime's CPU build) even when ``auto`` could pick CUDA;
    a detector (by name, or ``detector`` for one handed over as a module) runs with torch."""
    onnx_file = model_kind(config.model) == "onnx"
    device = resolve_device("cpu" if onnx_file and config.device == "auto" else config.device)
    if onnx_file and device.type == "cpu":  # its own rule said, not fp16's on the CPU (a trial: sent to bf16,
        dtype = _DTYPES.get(config.precision, torch.float32)  # which it refuses too)
    else:
        dtype = resolve_dtype(config.precision, device)
    return device, dtype, resolve_backend(config.backend, device, dtype, onnx_file=onnx_file,
                                          detector=detector or model_kind(config.model) in ("detector", "yolo"))


def input_size(height: int, width: int, short_side: int, fixed: tuple[int, int] | None = None) -> tuple[int, int]:
    """Network input ``(h, w)`` for a ``height x width`` frame: whole frame, aspect kept to within
    half a stride, both sides multiples of :data:`STRIDE`, the long side at most
    :data:`MAX_INPUT_ASPECT` times the short side; or ``fixed`` for fixed-size models.

    Raises:
        ConfigError: a frame more elongated than :data:`MAX_ASPECT` to 1.
    """
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise ConfigError(f"a {width}x{height} frame is more elongated than {MAX_ASPECT}:1, which cannot be mapped; "
                          f"frames up to {MAX_ASPECT}:1 are (crop or split the strip)")
    if fixed is not None:
        return fixed
    scale = short_side / min(height, width)
    longest = MAX_INPUT_ASPECT * max(STRIDE, int(round(short_side / STRIDE)) * STRIDE)
    h = min(longest, max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE))
    w = min(longest, max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE))
    return h, w


def stretch_note(name: str, fixed: tuple[int, int] | None, height: int, width: int) -> str | None:
    """What an ONNX file held to one input size (``fixed``, ``(H, W)``: fixed when it was exported,
    ``torch.onnx.export``'s default) does to a ``width x height`` frame of another aspect, said
    rather than done in silence; ``None`` where the aspects agree (within 1 %), any size is taken,
    or the size is a zoo network's own design (SSD's 320x320, a ViT's 224x224)."""
    if fixed is None or model_kind(name) != "onnx" or abs(width * fixed[0] - height * fixed[1]) <= 0.01 * height * fixed[1]:
        return None
    return (f"{os.path.basename(name)} takes {fixed[1]}x{fixed[0]} input only: {width}x{height} frames are "
            "stretched to it (their aspect is not kept)")


def read_labels(path: str) -> list[str]:
    """Class names from a text file, one a line (a blank line keeps its place, named by its index:
    an empty name showed nothing in the predictions and the stats; blank lines at the end name
    nothing)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")  # (a Windows editor's BOM is no name)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read labels file {path}: {getattr(exc, 'strerror', None) or exc}", field="labels") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    return [name or str(i) for i, name in enumerate(names)]


def with_overrides(loaded, config: EngineConfig):
    """``loaded`` (a :class:`~eigencam_live.models.LoadedModel`) with the labels and normalisation
    the settings give in place of the model's own."""
    for name in ("mean", "std"):  # checked before anything is changed
        value = getattr(config, name)
        if value is not None and loaded.normalises_itself:
            raise ConfigError(f"{loaded.spec.name} {loaded.normalises_itself}: no --mean/--std for it (they would "
                              "normalise its input twice)", field=name)
        if value is not None and len(value) != loaded.channels:
            what = "one number: it takes grey input" if loaded.channels == 1 else "three numbers (R G B)"
            raise ConfigError(f"{loaded.spec.name} needs {what}. Got {' '.join(f'{v:g}' for v in value)}", field=name)
    if config.labels is not None:
        loaded.labels = list(config.labels) if isinstance(config.labels, tuple) else read_labels(config.labels)
    loaded.mean = tuple(config.mean) if config.mean is not None else loaded.mean
    loaded.std = tuple(config.std) if config.std is not None else loaded.std
    return loaded
