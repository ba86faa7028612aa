"""Your own network: ``package.module:callable`` (a factory called with no arguments that returns an
``nn.Module`` with its weights loaded), or a module object handed to the library.

Optional attributes on the module: ``labels`` (class names), ``mean``/``std`` (RGB, of ``[0, 1]``
pixels; one number each for a grey network: one whose first convolution takes one channel, fed the
frames' luma), ``input_size`` (``(H, W)`` the network requires). The default target layer is the last one
whose output is a spatial feature map. A detector built like torchvision's (its own classes, a
keypoint head) runs as the detectors by name do (:func:`~eigencam_live.models.detectors.as_detector`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import re
import sys

import numpy as np
import torch
from torch import nn

from eigencam_live.errors import EigenCamError, ModelError, NetworkError, network_errors

from .detectors import _as_given, as_detector, coco_labels, is_torchvision_detector
from .layers import last_map_layer
from .loaded import LoadedModel, ModelSpec, normalisation
from .timm_zoo import timm_layer, timm_own
from .weights import load_state_file

__all__ = ["FACTORY", "from_module", "load_factory"]

#: ``package.module:callable`` (the callable may be an attribute path: ``zoo:Nets.small``), or a
#: Python file's path and its callable: ``models/mynet.py:build``.
FACTORY = re.compile(r"^(?:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*|.+\.py):[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def load_factory(source: str, weights: str = "imagenet") -> LoadedModel:
    """Import ``module`` (the current folder is importable), call ``callable()``, wrap the module.

    ``weights``: ``imagenet`` uses the module as the factory returns it (counted as trained: its
    weights are the factory's business); ``none`` re-initialises every layer that can
    (``reset_parameters``: random weights, untrained, as for the zoo's models); a file path loads a
    state_dict on top.

    Raises:
        ModelError: one line: the module does not import (which one, why), the callable is missing or
            raises, or what it returns is not an ``nn.Module``.
    """
    if not FACTORY.match(source):
        raise ModelError(f"{source!r} is not a factory: expected package.module:callable, e.g. mynet:build")
    module_name, attr = source.rsplit(":", 1)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    with _file_scope(module_name if module_name.endswith(".py") else None):
        net = _build(source, module_name, attr)
    if weights == "none":
        for module in net.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
    elif weights != "imagenet":
        weights = load_state_file(net, weights, source)
    loaded = from_module(net, name=source, weights=weights, owned=True)
    loaded.trained = weights != "none"
    return loaded


def _build(source: str, module_name: str, attr: str) -> nn.Module:
    """Import the factory's module, call the factory, check that a network came back."""
    try:
        module = _from_file(module_name) if module_name.endswith(".py") else importlib.import_module(module_name)
    except ModelError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ModelError(f"cannot import {module_name!r} for --model {source}: no such module "
                             f"(looked in the current folder and the installed packages)") from None
        raise ModelError(f"cannot import {module_name!r} for --model {source}: it needs {exc.name!r}, "
                         "which is not installed") from None
    except Exception as exc:
        raise ModelError(f"cannot import {module_name!r} for --model {source}: {_one_line(exc)}") from None
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ModelError(f"{module_name!r} has no {attr!r} (for --model {source})")
    if not callable(target):
        raise ModelError(f"{source} is {_a(type(target).__name__)}, not a callable that returns a network")
    try:
        net = target()
    except Exception as exc:
        raise ModelError(f"{source}() raised {_one_line(exc)}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{source}() returned {_a(type(net).__name__)}; it must return a torch.nn.Module")
    return net


def _a(kind: str) -> str:
    """``a str``, ``an int``: a type's name with its article."""
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


@contextlib.contextmanager
def _file_scope(path: str | None):
    """While a factory in a file is imported and called: its folder importable (first), so that its
    own imports of the files beside it work; after, the folder off ``sys.path`` again and the
    modules of those files (``blocks.py``, a package folder beside it) out of ``sys.modules`` (the
    network keeps what it uses), so that another folder's ``blocks.py`` is its own, not this one's.
    Nothing else is touched: packages it imported from elsewhere (a virtual environment inside the
    folder too), and the factory's own module, stay."""
    if path is None:
        yield
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        for name in set(sys.modules) - before:
            top = name.split(".")[0]
            file = os.path.abspath(getattr(sys.modules[name], "__file__", None) or os.sep)
            if file == os.path.join(folder, top + ".py") or file.startswith(os.path.join(folder, top) + os.sep):
                del sys.modules[name]  # found through the folder: a file or package beside the factory


def _from_file(path: str):
    """The module a Python file defines, under a name of its own: its path and its modification
    time (a file edited since is imported anew)."""
    import hashlib
    import importlib.util

    file = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(file):
        raise ModelError(f"{path} is a folder, not a Python file (for a factory, --model path/to/mynet.py:build)")
    if not os.path.isfile(file):
        raise ModelError(f"no such Python file: {path} (for a factory, --model path/to/mynet.py:build)")
    stat = os.stat(file)
    name = "eigencam_factory_" + hashlib.sha1(f"{file}|{stat.st_mtime_ns}|{stat.st_size}".encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _wrapped_detector(net: nn.Module) -> tuple[str, nn.Module, bool] | None:
    """``(name, module, alone)`` of a torchvision detector inside ``net``; ``alone``: it holds every
    parameter of ``net`` (a wrapper adding no layers of its own, whose forward can only call it).
    ``None`` where there is none."""
    params = {id(p) for p in net.parameters()}
    if not params:
        return None
    for where, module in net.named_modules():
        if where and is_torchvision_detector(module):
            return where, module, {id(p) for p in module.parameters()} == params
    return None


def _returns_boxes(net: nn.Module, detector: nn.Module) -> bool:
    """Whether ``net``'s forward runs ``detector`` whole and returns its boxes (a list of dicts with
    ``boxes``), on a blank input; not where it uses a part of it (its backbone under a classifier's
    head of its own: a review). The detector's transform is left as it was."""
    transform = detector.transform
    fixed = getattr(transform, "fixed_size", None)
    _as_given(transform, normalise=True)  # (no resize to 800 pixels: a blank input's forward in a second)
    ran: list[bool] = []
    hook = detector.register_forward_hook(lambda *_: ran.append(True))
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, 3, *(tuple(fixed) if fixed else (128, 128))))
    except Exception:
        out = None
    finally:
        hook.remove()
        del transform.resize  # its own again
    return bool(ran) and isinstance(out, (list, tuple)) and bool(out) and isinstance(out[0], dict) and "boxes" in out[0]


def _copied(net: nn.Module, name: str) -> nn.Module:
    try:
        return copy.deepcopy(net)
    except Exception as exc:  # a lock, an open file on it
        raise ModelError(f"{name} cannot be copied to run as a detector ({_one_line(exc)}); hand over a "
                         "module without it, or build it in a factory") from None


def from_module(net: nn.Module, *, name: str | None = None, weights: str = "imagenet", owned: bool = False) -> LoadedModel:
    """A :class:`LoadedModel` for a module object (eval mode; the optional attributes honoured).
    A torchvision detector is run as one (its transform told to take the input as given, its score
    threshold set each frame): on a copy, unless the module is ``owned`` (a factory's, built here).

    Raises:
        ModelError: ``net`` is not an ``nn.Module``, or an attribute has the wrong form.
        LayerNotFoundError: no layer of the network gives a spatial map.
    """
    if not isinstance(net, nn.Module):
        raise ModelError(f"the model must be a torch.nn.Module. Got {type(net).__name__}")
    if type(net).__name__ == "OptimizedModule" and isinstance(getattr(net, "_orig_mod", None), nn.Module):
        net = net._orig_mod  # torch.compile's wrapper: its layers named as the network's (not _orig_mod.features)
    name = name or type(net).__name__
    if isinstance(net, torch.jit.ScriptModule):  # traced or scripted: its layers cannot be hooked
        raise ModelError(f"{name} is a TorchScript module (torch.jit.script or trace); Eigen-CAM reads a layer's "
                         "output through a hook, which needs the nn.Module itself: give the module before scripting")
    labels = getattr(net, "labels", None)
    inner = None if is_torchvision_detector(net) else _wrapped_detector(net)
    if inner is not None and labels is None:  # the detector's own names, where the wrapper has none (a trial:
        labels = getattr(inner[1], "labels", None)  # "2" for "dog")
    if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) for x in labels)):
        raise ModelError(f"{name}.labels must be a list of class names")
    if inner is not None and not inner[2]:  # layers of its own around a detector whose boxes it returns: it runs,
        where = inner[0]  # as a detector (a trial: its boxes drawn, --score and --detections refused, a head's map)
        mine = net if owned else _copied(net, name)
        if _returns_boxes(mine, mine.get_submodule(where)):
            detector = mine.get_submodule(where)
            loaded = as_detector(mine, name, list(labels) if labels is not None else coco_labels(detector), weights,
                                 True, inside=where)
            loaded.note = (f"{name} runs a torchvision detector ({where}) with layers of its own: it runs as it is, "
                           "on pixels in [0, 1], its detector's transform normalising them and no longer resizing them")
            return loaded
        inner = None  # a part of one in a network of its own (its backbone before a classifier): a network as any
    if inner is not None:  # a wrapper that only calls it: its transform resized the input and hid the boxes
        where, net = inner[:2]
    if is_torchvision_detector(net):  # as by name: boxes, the backbone's maps, the transform's normalisation
        if not owned:  # the caller's own keeps its mode, resizing and threshold
            net = _copied(net, name)
        loaded = as_detector(net, name, list(labels) if labels is not None else coco_labels(net), weights, True)
        if inner is not None:
            loaded.note = (f"{name} wraps a torchvision detector ({where}), which holds all its weights: that "
                           "detector is run itself, for its boxes (its layers are named from it: backbone...)")
        return loaded
    net.eval()
    own = timm_own(net)
    if own is not None and labels is None and own["labels"]:
        labels = own["labels"]
    fixed = getattr(net, "input_size", None)
    if fixed is None and own is not None:
        fixed = own["fixed"]
    if fixed is not None:
        try:
            fixed = tuple(fixed)[-2:]
        except TypeError:
            fixed = ()
        if len(fixed) != 2 or not all(isinstance(d, int) and d >= 8 for d in fixed):
            raise ModelError(f"{name}.input_size must be (H, W) in pixels. Got {net.input_size!r}")
    # a grey network by its first convolution, tried first; where it does not run so (a one-channel
    # gate registered before the stem), the frames' three channels
    tries = (1, 3) if input_channels(net) == 1 else (3,)
    failures: list[EigenCamError] = []
    for channels in tries:
        try:
            loaded = LoadedModel(net=net, spec=ModelSpec(name, "", fixed), labels=list(labels or []), weights=weights,
                                 trained=True, prefix_tokens=getattr(net, "num_prefix_tokens", None), channels=channels,
                                 **_normalisation_of(net, name, channels, own))
            with network_errors(f"{name} failed on a blank test input (run to find its layers)"):
                loaded.spec = ModelSpec(name, timm_layer(loaded) if own is not None else last_map_layer(loaded, fixed), fixed)
            break
        except EigenCamError as exc:
            if fixed is None and isinstance(exc, NetworkError) and "shape" in str(exc):  # sized for another input
                exc = NetworkError(f"{exc}; a network that takes one input size says which: input_size = (H, W) on "
                                   "the module")
            failures.append(exc)
    else:
        if len(failures) == 1 or type(failures[0]) is ModelError:  # the module's own mean/std said it (not its run)
            raise failures[0]
        raise type(failures[1])(f"{failures[1]} (as a grey network: {failures[0]})")
    if fixed is None:
        one_size(loaded)
    _scores_by_lineage(loaded, fixed)
    return loaded


def _scores_by_lineage(loaded: LoadedModel, fixed: tuple[int, int] | None) -> None:
    """Which of an unnamed tuple's score-shaped outputs holds the class scores, by what is computed
    from what (:func:`~eigencam_live.results.scores_in_lineage`), and whether they come out of a
    sigmoid or a softmax (:func:`~eigencam_live.results.squashed_by`): one forward pass with
    autograd, once. Where that pass fails, the first of that shape, read as logits, as before."""
    from eigencam_live.backends.torch_backend import _outputs
    from eigencam_live.results import scores_in_lineage, squashed_by

    x = _blank(loaded, fixed or _PROBE)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = loaded.net(x.detach().clone().requires_grad_(True))
        loaded.scores_at = scores_in_lineage(out)
        scores = _outputs(out, loaded.scores_at)
        loaded.scores_from = squashed_by(scores) if isinstance(scores, torch.Tensor) else None
    except Exception as exc:  # the network's own refusal (it ran without autograd), whatever it raises
        if isinstance(exc, MemoryError):
            raise


#: The sizes a network without ``input_size`` is tried at: the layer probe's, then a 16:9 frame's.
_PROBE, _WIDE = (224, 224), (224, 384)


def _blank(loaded: LoadedModel, size: tuple[int, int]) -> torch.Tensor:
    """A blank ``(1, channels, *size)`` input on the network's device, in its dtype."""
    param = next(loaded.net.parameters(), None)
    return torch.zeros((1, loaded.channels, *size), device=param.device if param is not None else "cpu",
                       dtype=param.dtype if param is not None else torch.float32)


def one_size(loaded: LoadedModel, sizes: tuple[tuple[int, int], ...] = (_PROBE,), *, module: bool = True) -> None:
    """A network that does not run at a 16:9 size but at one of ``sizes`` (the probe's 224x224; a
    timm model's trained size: a Linear layer sized for one map, a position embedding for one grid,
    halo attention's blocks) takes the first of them that runs from now on, and says so in
    :attr:`LoadedModel.note`; before, every frame failed with torch's own message. None runs: left
    as it is (its frames fail in its own words). ``module``: a module of one's own, told how to say it."""
    try:
        with torch.inference_mode():
            loaded.net(_blank(loaded, _WIDE))
        return
    except Exception as exc:  # the network's own refusal, whatever it raises
        if isinstance(exc, MemoryError):
            raise
        refused = exc
    for size in sizes:
        try:
            with torch.inference_mode():
                loaded.net(_blank(loaded, size))
        except Exception as exc:
            if isinstance(exc, MemoryError):
                raise
            continue
        name, (h, w) = loaded.spec.name, size
        loaded.spec = ModelSpec(name, loaded.spec.layer, size)
        loaded.note = (f"{name} runs at {w}x{h} only (at {_WIDE[1]}x{_WIDE[0]}: {_one_line(refused)}): frames are "
                       f"resized to {w}x{h}" + (f"; set input_size = ({h}, {w}) on the module to say so" if module else ""))
        return


def _normalisation_of(net: nn.Module, name: str, channels: int,
                      own: dict | None = None) -> dict[str, tuple[float, ...] | str]:
    """``{"mean": ..., "std": ...}``: the module's own, else a timm model's (``own``, its
    pretrained_cfg's), else the default for ``channels`` (and ``normalises_itself`` where its
    forward does).

    A ``mean`` and ``std`` registered on the module (buffers, parameters) are its forward's own
    normalisation (``(x - self.mean) / self.std``): it is fed pixels in ``[0, 1]``, not normalised
    twice."""
    if all(key in net._buffers or key in net._parameters for key in ("mean", "std")):
        return {"mean": (0.0,) * channels, "std": (1.0,) * channels,
                "normalises_itself": "normalises its input itself (its registered mean and std buffers)"}
    norm = {}
    for key, default in zip(("mean", "std"), normalisation(channels), strict=True):
        if own is not None and own[key] is not None and len(own[key]) == channels:
            default = own[key]
        raw = getattr(net, key, None)
        try:
            if raw is None:
                value = default
            elif isinstance(raw, (int, float)) or getattr(raw, "ndim", None) == 0:  # mean = 0.5 (grey)
                value = (float(raw),)
            else:  # a sequence, or an array of any shape holding the numbers ((1, 3, 1, 1) too)
                value = tuple(float(v) for v in np.asarray(raw.tolist() if isinstance(raw, torch.Tensor) else raw, float).ravel())
        except (TypeError, ValueError):
            value = ()
        if len(value) != channels:
            what = "one number (its first convolution takes one channel: grey)" if channels == 1 else "three numbers (R, G, B)"
            got = f"a tensor of shape {tuple(raw.shape)}" if isinstance(raw, torch.Tensor) else " ".join(repr(raw).split())[:80]
            raise ModelError(f"{name}.{key} must be {what}. Got {got}")
        if not all(0 <= v <= 1 for v in value) or (key == "std" and min(value) <= 0):
            # as --mean and --std are held (a trial: a std of 0 gave NaN scores and blank maps, exit 0)
            raise ModelError(f"{name}.{key} must be numbers in [0, 1], of [0, 1] pixels (0-255 values divided by "
                             f"255){', above 0' if key == 'std' else ''}. Got {' '.join(f'{v:g}' for v in value)}")
        norm[key] = value
    return norm


def input_channels(net: nn.Module) -> int:
    """1 for a network whose first convolution takes one channel (a grey network: it is fed the
    frames' luma), else 3."""
    first = next((m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return 1 if first is not None and first.in_channels == 1 else 3


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
