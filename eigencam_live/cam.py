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
:class:`SubspaceTracker` keeps the sign continuous with the previous frame instead when the two
frames' components clearly match.

Decomposition, always in float32 whatever the input dtype:

* ``exact``: eigendecomposition of the smaller Gram matrix (``X X^T`` when ``HW <= C``, else
  ``X^T X``); never a full SVD.
* ``randomized``: batched randomized subspace iteration (Halko, Martinsson & Tropp 2011) with
  rank ``k + oversample`` and ``n_iter`` power iterations, optionally warm-started from the previous
  frame's subspace.
* ``auto``: ``exact`` when ``min(HW, C) <= EXACT_MAX_DIM``, else ``randomized``.

On the CPU, the ``exact`` method with ``HW <= C`` (every default layer at video sizes) takes a fast
path, :func:`_exact_cpu`, with the same results: at a 7 x 7 map the arithmetic is tiny and the cost
is the number of tensor ops, each 10 to 30 us right after a forward pass has evicted the caches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
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
#: A component whose variance is below this share of the total is rounding noise (a rank-deficient
#: map: fewer distinct positions than components) and is reported as absent: s = 0, an empty map.
NOISE = 1e-5
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
    # activations of 1e-8 and fp16 ones are coarse (and so that the energies below neither overflow
    # nor underflow). A constant frame becomes exactly zero.
    inv = 1.0 / spread.clamp_min(1e-30)
    x.mul_(inv[:, None, None])
    ok = _varies(x.square().sum(dim=(1, 2)), (mean * inv[:, None, None]).square().sum(dim=(1, 2)), h * w)
    # A zeroed frame has no singular values, so its scale never shows: no need to special-case it.
    x.mul_(ok[:, None, None])
    return x, spread


def _varies(energy, mean_energy, positions: int):
    """Whether a frame has any variation over its positions: the energy of its centred values must
    exceed 1e-12 of the energy of its channel means (RMS variation above 1e-6 of the RMS mean).

    A constant input leaves only rounding residue after centring (~1e-7 of the mean, an energy ratio
    ~1e-14), and an all-zero frame gives 0 > 0: both count as constant. Works on tensors and floats.
    """
    return energy > 1e-12 * positions * mean_energy


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
    if not sync_free and method == "exact" and h * w <= c and activations.is_cpu:
        fast = _exact_cpu(activations, component, n, tracker)
        if fast is not None:
            return fast

    xt, scale = _centred_matrix(activations)
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

    # Components below the rounding noise (rank-deficient maps) are reported as absent.
    real = s.square() > NOISE * energy[:, None]
    s = s * real
    v = v * real[:, None, :]
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


#: Smallest share of the raw energy ``||X||^2`` left after centring for which the CPU fast path runs
#: (its Gram matrix carries rounding errors ~1e-7 of the raw energy, at most 10x the general path's).
MIN_CENTRED_ENERGY = 0.1
#: Smallest mean square activation for the fast path: below, float32 squares lose precision.
MIN_MEAN_SQUARE = 1e-24
_ONES: dict[int, torch.Tensor] = {}
_CENTRING: dict[int, torch.Tensor] = {}
_CACHE_SIZES = 8  # distinct sizes kept; a stream of many sizes just rebuilds them


def _frames(values: list, single: bool) -> list:
    """``tolist()`` of a 2-D (one frame) or 3-D result as a list of frames."""
    return [values] if single else values


def _centring(positions: int) -> torch.Tensor:
    """The ``(N, N)`` centring matrix ``I - 11^T / N`` on the CPU, built once per size."""
    if positions not in _CENTRING:
        if len(_CENTRING) >= _CACHE_SIZES:
            _CENTRING.clear()
        _CENTRING[positions] = torch.eye(positions, dtype=torch.float32) - 1.0 / positions
    return _CENTRING[positions]


def _ones(channels: int) -> torch.Tensor:
    """A ``(channels, 1)`` column of ones on the CPU, built once per size."""
    if channels not in _ONES:
        if len(_ONES) >= _CACHE_SIZES:
            _ONES.clear()
        _ONES[channels] = torch.ones(channels, 1, dtype=torch.float32)
    return _ONES[channels]


def _exact_cpu(
    activations: torch.Tensor, component: int, n: int, tracker: SubspaceTracker | None
) -> CamResult | None:
    """The ``exact`` method for a CPU batch with ``HW <= C``: same definition, sign rule, tracker
    and results as the general path (the tests hold them equal), in about 25 calls instead of 90.

    At a 7x7 map every tensor is tiny, and each torch op costs 2 to 5 us whatever its size, 10 to 30
    us right after a forward pass has evicted the caches: the general path spent more on op overhead
    than on arithmetic. Here the activations see only the Gram product and one product for the
    loadings; the rest is ``eigh`` and products of ``HW x HW`` or ``n x C`` matrices, and everything
    of size ``n`` or ``HW`` per frame runs on Python floats and comes back as numpy arrays.

    Returns ``None`` (the general path takes over) for activations that are not finite or overflow
    when squared, that are too small for float32 squares, or that centring leaves with under
    ``MIN_CENTRED_ENERGY`` of their energy (near-constant frames).
    """
    b, c, h, w = activations.shape
    big_n = h * w
    single = b == 1
    # (B, N, C), a view for NCHW and channels-last alike; one frame as (N, C): 2-D products take
    # torch.mm's path (the Linear layers'), cheaper than bmm right after a forward pass
    x = activations.reshape(c, big_n).mT if single else activations.flatten(2).mT
    if x.requires_grad:
        x = x.detach()
    if x.dtype != torch.float32:
        x = x.float()
    # Centring as a product, X_c X_c^T = J (X X^T) J with J = I - 11^T / N: three BLAS calls (the
    # first does the work) instead of a reduction, a subtraction and a copy of X. Its rounding error
    # is ~1e-7 of the raw energy rather than of the centred one, so it is used only where centring
    # keeps at least MIN_CENTRED_ENERGY (1/10) of the energy: real feature maps keep 8 to 85 %.
    raw = x @ x.mT  # (B, N, N)
    raw_energy = [sum(d) for d in _frames(raw.diagonal(dim1=-2, dim2=-1).tolist(), single)]
    if not all(math.isfinite(e) and e >= MIN_MEAN_SQUARE * big_n * c for e in raw_energy):
        return None  # NaN/inf (or overflow) for the general path to clean; tiny or all-zero frames
    centre = _centring(big_n)
    try:
        evals, evecs = torch.linalg.eigh(centre @ raw @ centre)
    except torch.linalg.LinAlgError:
        return None
    ev = _frames(evals.tolist(), single)
    if not all(sum(e) >= MIN_CENTRED_ENERGY * r for e, r in zip(ev, raw_energy, strict=True)):
        return None
    top = evecs.narrow(-1, big_n - n, n)  # ascending: column n - 1 is component 1
    vt = (centre @ top).mT @ x  # (B, n, C): row n - 1 - j is s_j v_j^T (J: exactly orthogonal to 1)
    u = _frames(top.tolist(), single)  # (B, N, n)
    prev = None if tracker is None else tracker._loadings(c)
    # One product gives each loading vector's sum and, for the first frame, its dot products with the
    # previous frame's: column 0 of (C, 1 + m) is ones, the rest the previous loadings.
    sums = _frames((vt @ (_ones(c) if prev is None else prev[0])).tolist(), single)  # (B, n, 1 + m)
    if prev is not None:
        prev_coef = prev[1]
    aligned = prev is not None
    if tracker is not None and b > 1:
        chain = torch.linalg.vecdot(vt[1:], vt[:-1]).tolist()  # (B - 1, n): each frame against the one before

    k = component - 1
    bound = 2e-6 * math.sqrt(c)  # |sum v| > bound * ||v||_2 implies |sum v| > 1e-6 * ||v||_1
    out_proj, out_maps, out_s, out_explained = [], [], [], []
    for i in range(b):
        energy = sum(ev[i])  # the trace: ||X_c||_F^2
        s = [math.sqrt(lam) if lam > NOISE * energy else 0.0 for lam in reversed(ev[i][big_n - n :])]
        signs = []
        for j in range(n):
            total = sums[i][n - 1 - j][0]
            if s[j] == 0.0:
                signs.append(1.0)  # no component: the rule gives + for a zero vector
            elif abs(total) > bound * s[j]:
                signs.append(-1.0 if total < 0 else 1.0)
            else:  # (nearly) cancelling loadings: the rule's fallback, on tensors
                signs.append(float(_rule_signs((vt if single else vt[i])[n - 1 - j][None, :, None])))
        if aligned:  # sign continuity with the previous frame (SubspaceTracker.align)
            m = len(prev_coef)
            dots = [sums[0][n - 1 - j][m - j] for j in range(min(n, m))] if i == 0 else [chain[i - 1][n - 1 - j] for j in range(n)]
            for j, dot in enumerate(dots):
                if s[j] > 0.0:
                    cos = dot * prev_coef[j] / s[j]
                    if abs(cos) >= tracker.match:
                        signs[j] = -1.0 if cos < 0 else 1.0
        prev_coef = [signs[j] / s[j] if s[j] > 0.0 else 0.0 for j in range(n)]
        aligned = tracker is not None  # from the second frame on, against the frame before

        scale = s[k] * signs[k]
        col = n - component
        proj = [scale * row[col] for row in u[i]]
        lo, hi = max(min(proj), 0.0), max(max(proj), 0.0)
        inv = 1.0 / (hi - lo) if hi - lo > 1e-6 * hi else 0.0  # flat maps become 0 (normalize_maps)
        maps = [((t if t > 0.0 else 0.0) - lo) * inv for t in proj]
        out_proj.append(proj)
        out_maps.append(maps)
        out_s.append(s)
        out_explained.append([min(sj * sj / energy, 1.0) if sj > 0.0 else 0.0 for sj in s])

    if tracker is not None:
        tracker._keep(vt if single else vt[-1], prev_coef, s[0] > 0.0)
    # numpy builds arrays from lists in a third of the time torch.tensor takes
    return CamResult(
        maps=torch.from_numpy(np.array(out_maps, dtype=np.float32).reshape(b, h, w)),
        projections=torch.from_numpy(np.array(out_proj, dtype=np.float32).reshape(b, h, w)),
        singular_values=torch.from_numpy(np.array(out_s, dtype=np.float32)),
        explained=torch.from_numpy(np.array(out_explained, dtype=np.float32)),
        component=component,
        method="exact",
    )


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
        # The CPU exact path keeps the last frame's loadings as it computed them: ``_cols (C, 1 + n)``,
        # a column of ones, then s_j v_j in ascending order (column n - j is component j, 0-based),
        # and ``_coef`` (sign_j / s_j, in component order); ``_v`` is built from them when asked for.
        self._cols: torch.Tensor | None = None
        self._coef: list[float] | None = None

    def reset(self) -> None:
        self._v = self._cols = self._coef = None

    @property
    def basis(self) -> torch.Tensor | None:
        """``(C, n)`` signed right singular vectors of the last frame, or ``None``."""
        if self._v is None and self._cols is not None:
            coef = torch.tensor(self._coef[::-1], dtype=self._cols.dtype)
            # from here on _v is the state (a caller may edit it in place); _loadings rebuilds _cols
            self._v, self._cols, self._coef = (self._cols[:, 1:] * coef).flip(1), None, None
        return self._v

    def start(self, channels: int) -> torch.Tensor | None:
        basis = self.basis
        if basis is None or basis.shape[0] != channels:
            return None
        return basis

    def align(self, v: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
        """Return ``(B, n)`` signs for ``v (B, C, n)`` continuous with the previous frames."""
        prev = self.basis
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
        old = self.basis
        if has_variance is not None and old is not None and old.shape == new.shape:
            new = torch.where(has_variance[-1], new, old.to(new.device))
        self._v, self._cols, self._coef = new, None, None

    def _loadings(self, channels: int) -> tuple[torch.Tensor, list[float]] | None:
        """The previous frame as the CPU exact path uses it: ``(cols (C, 1 + m) on the CPU, coef)``,
        ``cols`` = ones, then the loadings in ascending order."""
        if self._cols is None:
            if self._v is None:
                return None
            v = self._v if self._v.device.type == "cpu" else self._v.cpu()
            self._cols, self._coef = torch.cat((_ones(v.shape[0]), v.flip(1)), dim=1), [1.0] * v.shape[1]
            self._v = None  # one source of truth: basis is rebuilt from _cols when asked for
        return (self._cols, self._coef) if self._cols.shape[0] == channels else None

    def _keep(self, raw: torch.Tensor, coef: list[float], has_variance: bool) -> None:
        """:meth:`update` for the CPU exact path: ``raw (n, C)`` rows ascending, ``coef`` = sign / s."""
        if not has_variance:  # a blank frame keeps the previous basis, if it has the same shape
            if self._v is not None:
                old = tuple(self._v.shape)
            else:
                old = None if self._cols is None else (self._cols.shape[0], self._cols.shape[1] - 1)
            if old == (raw.shape[1], raw.shape[0]):
                return
        self._v, self._cols, self._coef = None, torch.cat((_ones(raw.shape[1]), raw.mT), dim=1), coef


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
