"""Eigen-CAM on tensors: the first principal components of a conv layer's activations.

Definition (Muhammad & Yeasin, IJCNN 2020, arXiv 2008.00299), per frame:

* ``X`` = activations ``(C, H, W)`` reshaped to ``(HW, C)``, non-finite values replaced by 0,
  centred per channel over the ``HW`` positions;
* ``X = U S V^T``; the map of component ``k`` is ``X v_k = u_k s_k`` reshaped to ``(H, W)``;
* the map is passed through ReLU and min-max normalised to ``[0, 1]``;
* the explained variance of component ``k`` is ``s_k^2 / sum(s^2) = s_k^2 / ||X||_F^2``.

Sign rule. A singular vector's sign is arbitrary. We choose the sign for which the map correlates
positively with the channel-summed (centred) activation, ``X 1``: since
``<X v_k, X 1> = s_k^2 <v_k, 1>``, this is the sign that makes the channel loadings ``v_k`` sum to a
positive number. Where that sum is ~0 (no evidence either way) the largest-magnitude loading is made
positive. The rule depends on the input only, so the same input always gives the same map. For video,
:class:`SubspaceTracker` keeps the sign continuous with the previous frame instead when the two
frames' components clearly match.

Decomposition, always in float32 whatever the input dtype:

* ``exact``: eigendecomposition of the smaller Gram matrix (``X X^T`` when ``HW <= C``, else
  ``X^T X``); never a full SVD.
* ``randomized``: batched randomized subspace iteration (Halko, Martinsson & Tropp 2011) with
  rank ``k + oversample`` and ``n_iter`` power iterations, optionally warm-started from the previous
  frame's subspace.
* ``auto``: ``exact`` when ``min(HW, C) <= EXACT_MAX_DIM``, else ``randomized``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConfigError
from .linalg import initial_sketch, topk_eigh_sync_free

__all__ = [
    "EXACT_MAX_DIM",
    "METHODS",
    "CamResult",
    "SubspaceTracker",
    "TemporalSmoother",
    "eigen_cam",
    "normalize_maps",
]

METHODS = ("auto", "exact", "randomized")
#: Largest Gram side for which ``auto`` picks the exact method (eigh of a 384x384 matrix costs
#: a few ms on 2 CPU cores; beyond that the randomized method wins by a widening margin).
EXACT_MAX_DIM = 384
#: Number of leading components whose singular values are always returned (spectrum display).
SPECTRUM_SIZE = 5
_EPS = 1e-12


@dataclass
class CamResult:
    """Output of :func:`eigen_cam`.

    Attributes:
        maps: ``(B, H, W)`` float32 in ``[0, 1]``, same device as the input.
        projections: ``(B, H, W)`` float32, the signed projection ``X v_k`` before ReLU and
            normalisation.
        singular_values: ``(B, K)`` float32, the ``K`` leading singular values (``K`` is at least
            ``min(SPECTRUM_SIZE, rank)``; fewer when the matrix is smaller).
        explained: ``(B, K)`` float32, ``s_k^2 / ||X||_F^2`` for the same ``K`` components, in
            ``[0, 1]`` (0 for constant activations).
        component: the 1-based component the maps show.
        method: the method actually used (``exact`` or ``randomized``).
    """

    maps: torch.Tensor
    projections: torch.Tensor
    singular_values: torch.Tensor
    explained: torch.Tensor
    component: int
    method: str


def _check_component(component: int) -> int:
    if isinstance(component, bool) or not isinstance(component, int) or component < 1:
        raise ValueError(f"component must be an integer >= 1 (1 = first principal component). Got {component!r}")
    return component


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}. Got {method!r}")
    return method


def _centred_matrix(activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, H, W)`` any float dtype -> ``Xt (B, C, HW)`` float32 (``X`` transposed), finite,
    centred per channel and scaled to a maximum magnitude of 1, and the ``(B,)`` scale that undoes it.

    Channel-major, as the activations are laid out, so nothing is transposed in memory; five passes
    over the data in all, plus one for the Gram matrix (the per-op overhead, not arithmetic, dominates at 7x7 maps).
    """
    b, c, h, w = activations.shape
    x = activations.detach().reshape(b, c, h * w)
    if x.dtype == torch.float32:
        # nan_to_num returns a new tensor: the caller's activations are never modified, and the
        # in-place steps below work on our own copy.
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    else:
        x = x.to(torch.float32).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)  # .to copied already
    mean = x.mean(dim=2, keepdim=True)  # (B, C, 1)
    x.sub_(mean)
    spread = x.abs().amax(dim=(1, 2))  # (aminmax with a dim is 10x slower on the CPU)
    # Scale each frame to unit max so every threshold below is relative: untrained networks give
    # activations of 1e-8 and fp16 ones are coarse. A frame whose centred values are only rounding
    # residue of its raw values (a constant input: spread ~1e-7 of the mean) becomes exactly zero;
    # so does an all-zero frame (0 > 0 is false).
    ok = spread > 1e-6 * mean.abs().amax(dim=(1, 2))
    # A zeroed frame has no singular values, so its scale never shows: no need to special-case it.
    x.mul_((ok / spread.clamp_min(1e-30))[:, None, None])
    return x, spread


def _inverse(s: torch.Tensor) -> torch.Tensor:
    """``1 / s``, and 0 where ``s`` is ~0 (a component that carries no variance)."""
    return (s > _EPS) / s.clamp_min(_EPS)


def _exact(xt: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``n`` components of ``X`` (given as ``xt = X^T``, ``(B, C, N)``) by eigendecomposition of
    the smaller Gram matrix.

    Returns ``u (B, N, n)``, ``s (B, n)`` (descending), ``v (B, C, n)`` and ``energy (B,)``
    ``= ||X||_F^2`` (the Gram matrix's trace).
    """
    _, c, big_n = xt.shape
    if big_n <= c:
        gram = xt.transpose(1, 2) @ xt  # X X^T, (B, N, N)
        evals, evecs = torch.linalg.eigh(gram)
        s = evals[:, big_n - n :].flip(-1).clamp_min_(0.0).sqrt_()
        u = evecs[:, :, big_n - n :].flip(-1)
        # v_k = X^T u_k / s_k, computed as (U^T X)^T: half the time of X^T U for this layout.
        v = (u.transpose(1, 2) @ xt.transpose(1, 2)).transpose(1, 2) * _inverse(s)[:, None, :]
    else:
        gram = xt @ xt.transpose(1, 2)  # X^T X, (B, C, C)
        evals, evecs = torch.linalg.eigh(gram)
        s = evals[:, c - n :].flip(-1).clamp_min_(0.0).sqrt_()
        v = evecs[:, :, c - n :].flip(-1)
        u = (xt.transpose(1, 2) @ v) * _inverse(s)[:, None, :]  # u_k = X v_k / s_k
    energy = gram.diagonal(dim1=1, dim2=2).sum(-1)
    return u, s, v, energy


def _orthonormal(y: torch.Tensor) -> torch.Tensor:
    q, _ = torch.linalg.qr(y, mode="reduced")
    return q


def _randomized(
    xt: torch.Tensor,
    n: int,
    *,
    oversample: int,
    n_iter: int,
    start: torch.Tensor | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``n`` components of ``X`` (given as ``xt = X^T``, ``(B, C, N)``) by randomized subspace
    iteration; returns what :func:`_exact` returns.

    ``start`` is an optional ``(C, r)`` or ``(B, C, r)`` basis (e.g. the previous frame's right
    singular vectors); columns missing from it are filled with Gaussian noise.
    """
    b, c, big_n = xt.shape
    x = xt.transpose(1, 2)  # (B, N, C), a view
    r = min(n + oversample, big_n, c)
    omega = initial_sketch(b, c, r, x, start, generator)
    q = _orthonormal(x @ omega)  # (B, N, r)
    for _ in range(n_iter):
        q = _orthonormal(x @ _orthonormal(xt @ q))
    small = q.transpose(1, 2) @ x  # (B, r, C)
    ub, s, vh = torch.linalg.svd(small, full_matrices=False)
    u = q @ ub[:, :, :n]
    s = s[:, :n]
    v = vh[:, :n, :].transpose(1, 2)
    energy = (xt * xt).sum(dim=(1, 2))
    return u, s, v, energy


def _rule_signs(v: torch.Tensor) -> torch.Tensor:
    """``(B, n)`` signs (+1/-1) of ``v (B, C, n)`` from the documented rule: loadings ``v_k`` sum
    positive; where the sum is ~0, the largest-magnitude loading is made positive."""
    total = v.sum(dim=1)  # (B, n)
    mag = v.abs()
    fallback = v.gather(1, mag.argmax(dim=1, keepdim=True)).squeeze(1)
    decided = torch.where(total.abs() > 1e-6 * mag.sum(dim=1), total, fallback)
    return torch.where(decided < 0, -1.0, 1.0)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each ``(H, W)`` map of ``(B, H, W)`` to ``[0, 1]``; flat maps become 0."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    span = hi - lo
    # Dividing by +inf gives exactly 0: flat (or rounding-flat) maps need no second where().
    scaled = (flat - lo) / torch.where(span > 1e-6 * hi.abs(), span, float("inf"))
    return scaled.reshape(maps.shape)


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
) -> CamResult:
    """Eigen-CAM maps of a batch of activations.

    Args:
        activations: ``(B, C, H, W)`` (or ``(C, H, W)``, treated as ``B = 1``), any float dtype,
            any device. Never modified.
        component: 1-based principal component to show (1 = first, as in the paper).
        method: ``auto``, ``exact`` or ``randomized`` (see the module docstring).
        oversample: extra columns of the randomized sketch.
        n_iter: power iterations of the randomized method (1 is used when warm-started).
        tracker: optional :class:`SubspaceTracker` carrying the previous frame's subspace (video).
        generator: random generator for the randomized sketch (a fixed seed is used by default,
            so results are deterministic).
        sync_free: use :func:`eigencam_live.linalg.topk_eigh_sync_free` (randomized iteration with
            CholeskyQR2 and a Jacobi Rayleigh-Ritz step) instead of ``torch.linalg``'s
            eigh/qr/svd, whose error checks stall a CUDA stream; ``method`` is then ignored.

    Returns:
        :class:`CamResult` with ``maps (B, H, W)`` float32 in ``[0, 1]`` on the input's device.
    """
    component = _check_component(component)
    method = _check_method(method)
    if activations.dim() == 3:
        activations = activations.unsqueeze(0)
    if activations.dim() != 4:
        raise ValueError(f"activations must have a shape of (B, C, H, W). Got {tuple(activations.shape)}")
    if not activations.is_floating_point():
        raise TypeError(f"activations must be a floating-point tensor. Got {activations.dtype}")
    b, c, h, w = activations.shape
    if b == 0 or c == 0 or h * w == 0:
        raise ValueError(f"activations must be non-empty. Got {tuple(activations.shape)}")

    xt, scale = _centred_matrix(activations)
    rank_max = min(h * w, c)
    n = min(max(component, SPECTRUM_SIZE), rank_max)
    if component > rank_max:
        raise ConfigError(
            f"component must be <= {rank_max} (min(H*W, C) for activations {tuple(activations.shape)}). Got {component}"
        )
    if method == "auto":
        method = "exact" if rank_max <= EXACT_MAX_DIM else "randomized"

    if sync_free:
        start = tracker.start(c) if tracker is not None else None
        scores, v, s = topk_eigh_sync_free(
            xt.transpose(1, 2), n, oversample=oversample, n_iter=n_iter, start=start, generator=generator
        )
        u = scores * _inverse(s)[:, None, :]
        energy = (xt * xt).sum(dim=(1, 2))
        method = "sync-free"
    elif method == "exact":
        u, s, v, energy = _exact(xt, n)
    else:
        start = tracker.start(c) if tracker is not None else None
        iters = min(n_iter, 1) if start is not None else n_iter
        u, s, v, energy = _randomized(xt, n, oversample=oversample, n_iter=iters, start=start, generator=generator)

    signs = _rule_signs(v)
    if tracker is not None:
        signs = tracker.align(v, signs)
        tracker.update(v * signs[:, None, :], s[:, 0] > 0)
    k = component - 1
    proj = (u[:, :, k] * (s[:, k] * signs[:, k] * scale)[:, None]).reshape(b, h, w)
    maps = normalize_maps(torch.relu(proj))
    # Dividing by +inf gives 0: constant activations explain nothing.
    explained = (s.square() / torch.where(energy > _EPS, energy, float("inf"))[:, None]).clamp_(0.0, 1.0)
    s = s * scale[:, None]
    return CamResult(maps=maps, projections=proj, singular_values=s, explained=explained, component=component, method=method)


class SubspaceTracker:
    """Carries a video's principal subspace from frame to frame.

    * Warm start: the previous frame's right singular vectors seed the randomized sketch, so one
      power iteration suffices and the result stays close to the exact one.
    * Sign continuity: when a component of this frame matches the previous frame's
      (``|cos| >= match``), its sign is chosen to agree with it, so the map never flips between two
      frames of the same scene; otherwise the per-frame rule applies.

    For a batch, frames are taken as consecutive: each frame is aligned with the previous one
    within the batch, and the first with the last frame of the previous batch.
    Call :meth:`reset` on a cut or a seek.
    """

    def __init__(self, match: float = 0.5) -> None:
        self.match = match
        self._v: torch.Tensor | None = None  # (C, n) of the last frame, signs applied

    def reset(self) -> None:
        self._v = None

    @property
    def basis(self) -> torch.Tensor | None:
        """``(C, n)`` signed right singular vectors of the last frame, or ``None``."""
        return self._v

    def start(self, channels: int) -> torch.Tensor | None:
        if self._v is None or self._v.shape[0] != channels:
            return None
        return self._v

    def align(self, v: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
        """Return ``(B, n)`` signs for ``v (B, C, n)`` continuous with the previous frames."""
        prev = self._v
        if prev is not None:
            prev = prev.to(v.device)  # the engine may have moved to another device
        out = signs.clone()
        for i in range(v.shape[0]):
            if prev is not None and prev.shape[0] == v.shape[1]:
                m = min(prev.shape[1], v.shape[2])
                cos = (v[i, :, :m] * prev[:, :m]).sum(dim=0)  # unit vectors: a cosine
                agree = torch.where(cos < 0, -1.0, 1.0)
                out[i, :m] = torch.where(cos.abs() >= self.match, agree, out[i, :m])
            prev = v[i] * out[i]
        return out

    def update(self, v_signed: torch.Tensor, has_variance: torch.Tensor | None = None) -> None:
        """Keep the last frame's signed basis ``(C, n)``; a blank last frame (``has_variance`` False)
        keeps the previous basis instead (decided on the device: no host sync)."""
        new = v_signed[-1].detach().clone()
        if has_variance is not None and self._v is not None and self._v.shape == new.shape:
            new = torch.where(has_variance[-1], new, self._v.to(new.device))
        self._v = new


class TemporalSmoother:
    """Exponential smoothing of maps and of their normalisation range, against video flicker.

    ``strength`` in ``[0, 1)``: 0 disables smoothing; 0.8 keeps 80 % of the previous state each frame.
    It works on the rectified projections (before normalisation), so the colour scale follows a
    smoothed range instead of jumping with each frame's own min and max.
    """

    def __init__(self, strength: float = 0.0) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smoothing must be in [0, 1). Got {strength!r}")
        self.strength = float(strength)
        self._map: torch.Tensor | None = None
        self._hi: torch.Tensor | None = None

    def reset(self) -> None:
        self._map = None
        self._hi = None

    def __call__(self, projections: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` signed projections (frames in order) -> ``(B, H, W)`` maps in ``[0, 1]``."""
        rect = torch.relu(projections.to(torch.float32))
        if self.strength == 0.0:
            return normalize_maps(rect)
        a = self.strength
        out = torch.empty_like(rect)
        for i in range(rect.shape[0]):
            cur = rect[i]
            hi = cur.max()
            if self._map is None or self._map.shape != cur.shape:
                self._map, self._hi = cur, hi
            else:
                self._map = a * self._map + (1 - a) * cur
                self._hi = a * self._hi + (1 - a) * hi
            scale = torch.maximum(self._hi, self._map.max())
            out[i] = torch.where(scale > 0, self._map / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(cur))
        return out.clamp_(0.0, 1.0)
