"""Eigen-CAM on tensors: the first principal components of a conv layer's activations.

Definition (Muhammad & Yeasin, IJCNN 2020, arXiv 2008.00299), per frame:

* ``X`` = activations ``(C, H, W)`` reshaped to ``(HW, C)``, non-finite values replaced by 0,
  centred per channel over the ``HW`` positions;
* ``X = U S V^T``; the map of component ``k`` is ``X v_k = u_k s_k`` reshaped to ``(H, W)``;
* the map is passed through ReLU and min-max normalised to ``[0, 1]``;
* the explained variance of component ``k`` is ``s_k^2 / sum(s^2) = s_k^2 / ||X||_F^2``.

Degenerate cases: a frame that does not vary over its positions (RMS variation under 1e-6 of the RMS
mean, e.g. constant activations) gives an all-zero map and zero singular values; a component that
carries less than ``NOISE`` (1e-5) of the variance is rounding noise (a rank-deficient map, fewer
distinct positions than components) and is reported as absent: ``s_k = 0`` and an all-zero map.

Sign rule. A singular vector's sign is arbitrary. We choose the sign for which the map correlates
positively with the channel-summed (centred) activation, ``X 1``: since
``<X v_k, X 1> = s_k^2 <v_k, 1>``, this is the sign that makes the channel loadings ``v_k`` sum to a
positive number. Where that sum is ~0 (no evidence either way) the largest-magnitude loading is made
positive. The rule depends on the input only, so the same input always gives the same map. For video,
:class:`~eigencam_live.cam.video.SubspaceTracker` keeps the sign continuous with the previous frame
instead when the two frames' components clearly match and the rule is not firm (the map correlates
with the channel-summed activation at ``|r| <= tail.FIRM``, 0.3): a near tie never flips the map,
and a firm rule is never overruled by the frames before it.

Decomposition (:mod:`eigencam_live.cam.solvers`), always in float32 whatever the input dtype:

* ``exact``: eigendecomposition of the smaller Gram matrix (``X X^T`` when ``HW <= C``, else
  ``X^T X``); never a full SVD. On the CPU with ``HW <= C`` (every default layer at video sizes) it
  is computed straight from the activations (:func:`~eigencam_live.cam.solvers.gram_cpu`).
* ``randomized``: batched randomized subspace iteration (Halko, Martinsson & Tropp 2011), iterated
  until a residual bound shows the shown component converged, optionally warm-started from the
  previous frame's subspace.
* ``auto``: ``exact`` when ``min(HW, C) <= EXACT_MAX_DIM``, else ``randomized``.
* ``sync_free=True``: the GPU solver, without host synchronisation.

Whatever the solver, :func:`~eigencam_live.cam.tail.cam_from_components` applies the definition.
"""

from __future__ import annotations

import torch

from eigencam_live.errors import ConfigError

from . import solvers
from .tail import CamResult, cam_from_components
from .video import SubspaceTracker

__all__ = ["EXACT_MAX_DIM", "METHODS", "SPECTRUM_SIZE", "eigen_cam"]

METHODS = ("auto", "exact", "randomized")
#: Largest Gram side for which ``auto`` picks the exact method (eigh of a 384x384 matrix costs
#: a few ms on 2 CPU cores; beyond that the randomized method wins by a widening margin).
EXACT_MAX_DIM = 384
#: Number of leading components whose singular values are always returned (spectrum display).
SPECTRUM_SIZE = 5


def _check_component(component: int) -> int:
    if isinstance(component, bool) or not isinstance(component, int) or component < 1:
        raise ValueError(f"component must be an integer >= 1 (1 = first principal component). Got {component!r}")
    return component


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}. Got {method!r}")
    return method


def eigen_cam(
    activations: torch.Tensor,
    component: int = 1,
    method: str = "auto",
    *,
    oversample: int = 6,
    n_iter: int = 2,
    tracker: SubspaceTracker | None = None,
    generator: torch.Generator | None = None,
    sync_free: bool = False,
    gram: solvers.Gram | None = None,
) -> CamResult:
    """Eigen-CAM maps of a batch of activations.

    Args:
        activations: ``(B, C, H, W)`` (or ``(C, H, W)``, treated as ``B = 1``), any float dtype,
            any device. Never modified.
        component: 1-based principal component to show (1 = first, as in the paper).
        method: ``auto``, ``exact`` or ``randomized`` (see the module docstring).
        oversample: extra columns of the randomized (and sync-free) sketch.
        n_iter: power iterations the randomized method runs at least (1 when warm-started); it
            goes on until the shown component has converged. The sync-free solver runs a fixed
            ``SYNC_FREE_STEPS``.
        tracker: optional :class:`SubspaceTracker` carrying the previous frame's subspace (video).
        generator: random generator for the randomized sketch (a fixed seed is used by default,
            so results are deterministic).
        sync_free: use :func:`eigencam_live.cam.solvers.sync_free` (subspace iteration with
            CholeskyQR2 and a Jacobi Rayleigh-Ritz step) instead of ``torch.linalg``'s
            eigh/qr, whose error checks stall a CUDA stream; ``method`` is then ignored.
        gram: optional :class:`~eigencam_live.cam.solvers.Gram` of these activations (the centred
            Gram matrix of their positions and the sums the sign rule reads), computed by the
            backend beside them (ONNX Runtime does); the CPU solver of the exact method uses it
            instead of computing it.

    Returns:
        :class:`CamResult` with ``maps (B, H, W)`` float32 in ``[0, 1]`` on the input's device.
    """
    component = _check_component(component)
    method = _check_method(method)
    if not isinstance(activations, torch.Tensor):  # (a trial: a numpy array met an AttributeError)
        raise TypeError(f"activations must be a torch.Tensor of shape (B, C, H, W). Got {type(activations).__name__}"
                        + (" (torch.from_numpy converts it)" if type(activations).__module__ == "numpy" else ""))
    shape = activations.shape
    if len(shape) == 3:
        activations = activations.unsqueeze(0)
        shape = activations.shape
    if len(shape) != 4:
        raise ValueError(f"activations must have a shape of (B, C, H, W). Got {tuple(shape)}")
    if not activations.is_floating_point():
        raise TypeError(f"activations must be a floating-point tensor. Got {activations.dtype}")
    b, c, h, w = shape
    if b == 0 or c == 0 or h * w == 0:
        raise ValueError(f"activations must be non-empty. Got {tuple(activations.shape)}")

    rank_max = min(h * w, c)
    n = min(max(component, SPECTRUM_SIZE), rank_max)
    if component > rank_max:
        raise ConfigError(
            f"component must be <= {rank_max} (min(H*W, C) for activations {tuple(activations.shape)}). Got {component}"
        )
    if method == "auto":
        method = "exact" if rank_max <= EXACT_MAX_DIM else "randomized"
    if sync_free:
        method = "sync-free"
    found = None
    if method == "exact" and h * w <= c and activations.is_cpu:
        found = solvers.gram_cpu(activations, n, gram)
    scale = 1.0
    if found is None:
        xt, spread = solvers.centred_matrix(activations)
        scale = spread[:, None]
        start = tracker.start(h * w) if tracker is not None and method != "exact" else None
        if start is not None:  # the previous maps' directions, as channel loadings of this frame
            start = xt @ start.to(device=xt.device, dtype=xt.dtype)
            start = start / torch.linalg.vector_norm(start, dim=1, keepdim=True).clamp_min(1e-30)
        if method == "exact":
            found = solvers.exact(xt, n)
        elif method == "sync-free":
            found = solvers.sync_free(xt, n, oversample=oversample, start=start, generator=generator)
        else:
            iters = min(n_iter, 1) if start is not None else n_iter
            found = solvers.randomized(
                xt, n, watch=component, oversample=oversample, n_iter=iters, start=start, generator=generator
            )
        if tracker is not None:  # how firmly the sign rule decides: the tracker reads it
            found = found._replace(spread=torch.linalg.vector_norm(xt.sum(dim=1), dim=1))
    return cam_from_components(found, scale, (b, h, w), component, method, tracker)
