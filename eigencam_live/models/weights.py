"""A state_dict file loaded onto a network: the one way, for every model source, with one-line errors.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never
code (a pickle that asks for anything else is refused, and the refusal never suggests otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from eigencam_live.errors import WeightsError

__all__ = ["load_state_file"]


def load_state_file(net: nn.Module, weights: str, name: str) -> str:
    """Load the state_dict in file ``weights`` into ``net`` (``name`` for messages); returns the path.

    Accepts a plain state_dict or a checkpoint holding one under ``state_dict`` or ``model``, with or
    without DataParallel's ``module.`` prefixes, or the network's part of a training wrapper's
    state_dict (``model.``, ``model.module.``; see :func:`_unprefixed`).

    Raises:
        WeightsError: one line: the file is missing, empty, not a torch file, holds something other
            than tensors, does not fit the network (or fits it twice), or holds NaN/infinite values.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (expected imagenet, none, or a state_dict .pth file)")
    if path.stat().st_size == 0:
        raise WeightsError(f"weights file {path} is empty (expected a state_dict saved with torch.save)")
    try:
        with open(path, "rb") as f:  # torch.save writes a zip (PK), or a pickle (protocol byte 0x80) before 1.6
            head = f.read(2)
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        # (a trial: a text file's lines, read as a pickle, were said to ask to run "lass_0.class_1")
        raise WeightsError(f"cannot read weights file {path}: not a torch file (expected a state_dict saved with "
                           "torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read weights file {path}: {_reason(exc)}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state_dict of tensors (got {type(state).__name__})")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    state = _unprefixed(state, set(net.state_dict()), path)
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise WeightsError(f"weights file {path} holds NaN or infinite values (first in {bad!r}); "
                           "the network would predict nothing: use a healthy checkpoint")
    own = net.state_dict()
    if set(state) == set(own):  # the same layers, some of other sizes: a network trained for other classes
        sized = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape]
        # (as many outputs and nothing else changed: not a ViT's position embedding for another size, a review)
        if sized and all(len(a) == len(b) and a[1:] == b[1:] for _, a, b in sized):
            k, theirs, mine = sized[0]
            more = f" and {len(sized) - 1} more" if len(sized) > 1 else ""
            raise WeightsError(
                f"weights file {path} does not fit {name}: its {k} is {'x'.join(map(str, theirs))}, the network's "
                f"{'x'.join(map(str, mine))}{more} (trained for other classes? build the network for them in a "
                "factory, --model mynet:build, with --weights FILE: see the README's Models)")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"weights file {path} does not fit {name}: {_fit_reason(exc)}") from None
    return str(path)


def _reason(exc: BaseException) -> str:
    """torch.load's failure in one line, without its advice to load unsafely."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if isinstance(exc, EOFError) or not text.strip():
        return "the file is truncated or not a torch file"
    blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)|unsupported GLOBAL ([\w.]+)", text)
    if blocked:
        return f"it asks to run {next(g for g in blocked.groups() if g)} when loaded, which is refused (only tensors are read)"
    # before the refusal's own words: torch says "Weights only load failed" for any file its
    # unpickler stops on, a text file too ("Unsupported operand": a trial was said to ask to run code)
    if isinstance(exc, KeyError) or any(words in text for words in ("magic number", "zip archive", "invalid load key",
                                                                    "Unsupported operand")):
        return "not a torch file (expected a state_dict saved with torch.save)"
    if "Weights only load failed" in text:
        return "it asks to run code when loaded, which is refused (only tensors are read)"
    return text.strip().splitlines()[0][:200]


def _unprefixed(state: dict, own: set[str], path: Path) -> dict:
    """The part of ``state`` under one first name (``model.``, a training wrapper's attribute:
    Lightning's checkpoints) whose keys, that name taken off, are exactly the network's; else
    ``state`` as it is (a trial's ``model.`` keys were refused for the missing ones alone). The
    wrapper's other parts (a loss's class weights) are left out. Two parts that fit (a network and
    its EMA copy, ``model.`` and ``model_ema.``) are refused: which one is meant is not said. A
    part may hold DataParallel's ``module.`` prefix too (``model.module.``); keys without a dot (a
    wrapper's own buffer) belong to no part.
    """
    if not state or set(state) == own:
        return state
    parts: dict[str, dict] = {}
    for key, value in state.items():
        if "." in key:
            head, rest = key.split(".", 1)
            parts.setdefault(f"{head}.", {})[rest] = value
    fits = {}
    for head, part in parts.items():
        if set(part) != own and all(k.startswith("module.") for k in part):
            head, part = f"{head}module.", {k[len("module."):]: v for k, v in part.items()}
        if set(part) == own:
            fits[head] = part
    if len(fits) > 1:
        heads = list(fits)
        raise WeightsError(f"weights file {path} holds the network {len(fits)} times, under "
                           f"{', '.join(heads[:-1])} and {heads[-1]}: save the keys of the one to use, that prefix "
                           "taken off, in a file of their own")
    return next(iter(fits.values())) if fits else state


def _fit_reason(exc: RuntimeError) -> str:
    """torch's missing and unexpected keys (or size mismatches), each cut short, on one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    details = lines[1:3] if len(lines) > 1 else lines[:1] or ["mismatch"]
    return "; ".join(d if len(d) <= 200 else d[:199] + "…" for d in details)
