"""The one Eigen-CAM tail: from a solver's :class:`~eigencam_live.cam.solvers.Components` to maps.

Every solver (exact, CPU Gram, randomized, sync-free) ends here, so the rules below exist once:

* the noise floor: a component carrying less than ``NOISE`` of the variance is reported as absent
  (``s_k = 0``, an all-zero map);
* the sign rule: the loadings ``v_k`` sum positive (the map correlates positively with the
  channel-summed activation); where that sum is ~0, the largest-magnitude loading is made positive;
* the video tracker (:class:`~eigencam_live.cam.video.SubspaceTracker`): sign continuity with the
  previous frame, where the rule is not firm (``FIRM``);
* the map ``X v_k = u_k s_k`` in the activations' units, ReLU, min-max normalisation to ``[0, 1]``;
* the explained variance ``s_k^2 / ||X||_F^2``.

It is written once, in torch over ``(B, ...)`` tensors, and runs where the solver's tensors are (no
host synchronisation on a GPU). At a 7 x 7 map each op costs 5 to 30 us right after a forward pass
whatever its size, so it is written in as few ops as the rules allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .solvers import Components
    from .video import SubspaceTracker

__all__ = ["NOISE", "CamResult", "cam_from_components", "clear_sums", "namespace", "normalize_maps"]

#: A component whose variance is below this share of the total is rounding noise (a rank-deficient
#: map: fewer distinct positions than components) and is reported as absent: s = 0, an empty map.
NOISE = 1e-5
#: A singular value under this share of the first counts as 0 where it would be divided by.
NEGLIGIBLE = 1e-12
#: The sign rule decides a video frame's sign by itself, whatever the previous frame's, where the
#: map correlates with the channel-summed activation at ``|r|`` above this; below it the tracker
#: keeps the previous frame's sign. On a trained network the median ``|r|`` is 0.9 (EfficientNet-
#: Lite0 on three real videos); a tracker that decided every sign kept 269 of 1394 frames of a
#: person video inverted after one weak frame (``|r|`` 0.24) flipped the rule, against ``|r|`` up
#: to 0.94; at 0.3 none is, and the rule alone would have flipped 5 times, this 3.
FIRM = 0.3


@dataclass
class CamResult:
    """Output of :func:`eigencam_live.cam.eigen_cam`.

    Attributes:
        maps: ``(B, H, W)`` float32 in ``[0, 1]``, same device as the input.
        projections: ``(B, H, W)`` float32, the signed projection ``X v_k`` before ReLU and
            normalisation, in the activations' units (``+-inf`` where those exceed float32's range,
            activations of ~1e37 and more; ``maps`` stay finite).
        singular_values: ``(B, K)`` float32, the ``K`` leading singular values (``K`` is at least
            ``min(SPECTRUM_SIZE, rank)``; fewer when the matrix is smaller), in the same units.
        explained: ``(B, K)`` float32, ``s_k^2 / ||X||_F^2`` for the same ``K`` components, in
            ``[0, 1]`` (0 for constant activations).
        component: the 1-based component the maps show.
        method: the method actually used (``exact``, ``randomized`` or ``sync-free``).
    """

    maps: torch.Tensor
    projections: torch.Tensor
    singular_values: torch.Tensor
    explained: torch.Tensor
    component: int
    method: str


#: numpy's side of the syntax the tail shares with torch: the ufuncs' own reductions (C calls;
#: ``np.amax`` and ``np.sum`` first pass through Python wrappers).
_NUMPY = SimpleNamespace(sum=np.add.reduce, amax=np.maximum.reduce, amin=np.minimum.reduce, where=np.where,
                         sign=np.sign)


def namespace(a: torch.Tensor | np.ndarray):
    """The functions that apply to ``a``: numpy's for an array, else ``torch``. The tail is written
    once in the syntax both share (``xp.amax(a, axis=1)``, ``xp.where``, ``abs(a)``,
    ``a.clip(lo, None)``): torch on any device, numpy for the CPU solver of one small map, where
    each torch op right after a forward pass costs 10 to 30 us and a numpy op a few."""
    return _NUMPY if isinstance(a, np.ndarray) else torch


def inverse(s: torch.Tensor) -> torch.Tensor:
    """``1 / s`` for singular values ``s (..., n)`` in descending order, and 0 where ``s`` is ~0
    (under ``NEGLIGIBLE`` of the first: a component that carries no variance), whatever their units."""
    return (s > NEGLIGIBLE * s[..., :1]) / s.clip(1e-30, None)


def clear_sums(total: torch.Tensor, channels: int) -> torch.Tensor:
    """Where the sums ``total`` of unit loadings over ``channels`` decide a sign by themselves:
    ``|sum| > 1e-6 sqrt(C)``, i.e. above 1e-6 of the largest ``||v_k||_1`` a unit vector can have."""
    return abs(total) > 1e-6 * math.sqrt(channels)


def rule_signs(v: torch.Tensor | None, total: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, n)`` signs (+1/-1, ``v``'s dtype) of the loadings ``v (B, C, n)`` (unit or zero
    columns) from the documented rule: ``v_k`` sums positive; where the sum is ~0
    (:func:`clear_sums`), the largest-magnitude loading is made positive (that is the sign of
    ``max + min``; an exact tie gives +).

    ``total``: the sums of ``v``'s columns where the solver has them without ``v``
    (:attr:`~eigencam_live.cam.solvers.Components.total`); ``v`` is then ``None``, the sum of every
    component above the noise floor being clear (the sign of one below it never shows; a zero sum,
    of a component without variance, gives +)."""
    if v is None:
        xp = namespace(total)
        return xp.sign(total) + (total == 0)
    xp = namespace(v)
    total = xp.sum(v, axis=1)
    clear = clear_sums(total, v.shape[1])
    if (xp is not torch or v.is_cpu) and bool(clear.all()):  # read on the host at no cost: no fallback needed
        return xp.sign(total)
    largest = xp.amax(v, axis=1) + xp.amin(v, axis=1)
    decided = xp.where(clear, total, largest)
    return xp.sign(decided) + (decided == 0)


def _normalize(flat: torch.Tensor) -> torch.Tensor:
    """Min-max normalisation of each row of ``(B, P)`` to ``[0, 1]``; flat rows become 0."""
    xp = namespace(flat)
    lo = xp.amin(flat, axis=1, keepdims=True)
    hi = xp.amax(flat, axis=1, keepdims=True)
    span = hi - lo
    # Dividing by +inf gives exactly 0: flat (or rounding-flat) maps need no second where().
    return (flat - lo) / xp.where(span > 1e-6 * abs(hi), span, float("inf"))


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each ``(H, W)`` map of ``(B, H, W)`` to ``[0, 1]``; flat maps become 0."""
    return _normalize(maps.reshape(maps.shape[0], -1)).reshape(maps.shape)


def cam_from_components(
    components: Components,
    scale: torch.Tensor | float,
    shape: tuple[int, int, int],
    component: int,
    method: str,
    tracker: SubspaceTracker | None = None,
) -> CamResult:
    """Apply the definition to a solver's output: see the module docstring.

    Args:
        components: ``u (B, N, n)``, ``s (B, n)``, ``v (B, C, n)`` (or ``None`` with the sums of
            its columns in ``total (B, n)``), ``energy (B,)`` of the matrix the solver saw, with
            ``N = H * W``: torch tensors, or numpy arrays from the CPU solver.
        scale: ``(B, 1)`` tensor or a number, what that matrix was divided by (maps and singular
            values come back in the activations' units).
        shape: ``(B, H, W)`` of the maps.
        component: 1-based component to show, ``<= n``.
        method: recorded in the result.
        tracker: video state; its signs win over the rule where the frames' components match, and
            it keeps this batch's last basis.

    Returns:
        :class:`CamResult`, every tensor float32 on the solver's device (the CPU for numpy).
    """
    u, s, v, energy, sums, spread = components
    xp = namespace(s)
    power = s * s
    total = energy[:, None]
    real = power > NOISE * total
    signs = rule_signs(v, sums)
    if tracker is not None:
        firm = None
        if spread is not None:  # |r| of each map with the channel-summed activation: u_k . X_c 1 / ||X_c 1||
            along = sums if v is None else xp.sum(v, axis=1)  # 1^T v_k, and s_k 1^T v_k = u_k . X_c 1
            firm = abs(s * along) > FIRM * spread[:, None]
            if v is not None:  # where the sum is too small to decide (rounding), the rule's fallback is no evidence
                firm = firm & clear_sums(along, v.shape[1])
        signs = tracker.follow(u, real, signs, firm)
    s = s * real
    k = component - 1
    proj = u[:, :, k] * (s[:, k : k + 1] * signs[:, k : k + 1])  # (B, N): X v_k, signed, the solver's units
    # ReLU and min-max do not depend on a positive scale: the map comes from the solver's units, so
    # it stays finite where the activations' units overflow float32 (activations of ~1e37 and more).
    maps = _normalize(proj.clip(0.0, None)).reshape(shape)
    if not (isinstance(scale, float) and scale == 1.0):
        s = s * scale
        proj = proj * scale
    # constant activations (zero energy, zero power) explain nothing: 0 / 1e-30
    explained = (power * real / total.clip(1e-30, None)).clip(0.0, 1.0)
    found = (maps, proj.reshape(shape), s, explained)
    if xp is _NUMPY:
        found = tuple(torch.from_numpy(a) for a in found)  # float32 all: the solver's dtype
    return CamResult(*found, component=component, method=method)
