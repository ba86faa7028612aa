"""Solvers: the leading principal components of the Eigen-CAM matrix, all in one form.

Every solver returns :class:`Components` ``(u, s, v, energy)`` of ``X`` (positions x channels,
centred per channel); :func:`eigencam_live.cam.tail.cam_from_components` does everything else. A
fast path is a solver here, never a second tail.

* :func:`exact` - eigendecomposition of the smaller Gram matrix; never a full SVD.
* :func:`gram_cpu` - the same for a CPU batch with ``HW <= C``, straight from the raw activations
  in about a third of the tensor ops (at a 7 x 7 map the op count, not arithmetic, is the cost).
* :func:`randomized` - randomized subspace iteration with Rayleigh-Ritz, iterated until a residual
  bound says the watched components have converged.
* :func:`sync_free` - randomized iteration without host synchronisation (CUDA), a fixed and ample
  number of steps on the Gram matrix.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch
from scipy.linalg import blas, lapack

from .linalg import cholesky_qr, initial_sketch, jacobi_eigh
from .tail import NOISE, clear_sums, inverse

__all__ = ["Components", "Gram", "centred_matrix", "exact", "gram_cpu", "randomized", "sync_free"]

#: :func:`randomized` stops when every watched component's eigenvector error bound
#: ``||X X^T u - s^2 u|| / gap`` (sin of its angle to the exact one, Davis-Kahan) is below this.
TOLERANCE = 1e-2
#: Power iterations :func:`randomized` gives up after (a spectral gap too small to resolve).
MAX_ITER = 40
#: Steps of :func:`sync_free` on the Gram matrix, each one a power iteration: fixed, and ample for
#: the slow spectra of random-weight networks (8 gave r >= 0.99999 against the exact map on every
#: frame of a real video; the tests hold it to r >= 0.999).
SYNC_FREE_STEPS = 12
#: :func:`gram_cpu` declines (the robust path runs) when centring keeps less than this share of the
#: raw energy ``||X||^2`` (its Gram matrix carries rounding errors ~1e-7 of the raw energy) ...
MIN_CENTRED_ENERGY = 0.1
#: ... or when the mean square activation is below this (float32 squares lose precision).
MIN_MEAN_SQUARE = 1e-24


class Components(NamedTuple):
    """The ``n`` leading principal components of ``B`` matrices ``X (N, C)``, float32 tensors
    (numpy arrays from :func:`gram_cpu`).

    Attributes:
        u: ``(B, N, n)`` left singular vectors (finite; any where ``s`` is ~0).
        s: ``(B, n)`` singular values, descending, ``>= 0``.
        v: ``(B, C, n)`` right singular vectors (channel loadings), unit or zero columns; ``None``
            where the solver did not need to form them (then ``total`` is given).
        energy: ``(B,)`` ``||X||_F^2``, the sum of all squared singular values.
        total: ``(B, n)`` the sums of ``v``'s columns, given by a solver that has them without
            ``v`` (:func:`gram_cpu`: ``u_k^T X_c 1 / s_k``); ``None``: the tail sums ``v``.
        spread: ``(B,)`` ``||X_c 1||``, the norm of the channel-summed centred activations, in the
            units of the matrix the solver saw: with ``s_k 1^T v_k = u_k^T X_c 1`` it says how firmly
            the sign rule decides (the correlation of the map with that sum), for the video tracker;
            ``None`` where not given (the tracker then decides every sign it can match).
    """

    u: torch.Tensor
    s: torch.Tensor
    v: torch.Tensor | None
    energy: torch.Tensor
    total: torch.Tensor | None = None
    spread: torch.Tensor | None = None


class Gram(NamedTuple):
    """What a backend computed beside activations ``X`` ``(B, C, H, W)`` for :func:`gram_cpu`
    (ONNX Runtime does, while they are in its caches): float32 numpy arrays, as the runtime returns
    them and the CPU solver reads them (each conversion costs 5 to 10 us right after a forward),
    never modified.

    Attributes:
        matrix: ``(B, HW, HW)`` ``X_c X_c^T``, the Gram matrix of the positions, channels centred.
        sums: ``(B, HW)`` ``X_c 1``, the centred channel sums at each position.
        raw: ``(B,)`` ``||X||^2``, the energy of the activations as they are.
    """

    matrix: np.ndarray
    sums: np.ndarray
    raw: np.ndarray


def _varies(energy, mean_energy, positions: int):
    """Whether a frame has any variation over its positions: the energy of its centred values must
    exceed 1e-12 of the energy of its channel means (RMS variation above 1e-6 of the RMS mean).

    A constant input leaves only rounding residue after centring (~1e-7 of the mean, an energy ratio
    ~1e-14), and an all-zero frame gives 0 > 0: both count as constant.
    """
    return energy > 1e-12 * positions * mean_energy


def centred_matrix(activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, H, W)`` any float dtype -> ``Xt (B, C, HW)`` float32 (``X`` transposed), finite,
    centred per channel and scaled to a maximum magnitude of 1, and the ``(B,)`` scale that undoes it.

    Channel-major, as the activations are laid out, so nothing is transposed in memory. Non-finite
    values count as 0; a frame without variation (see :func:`_varies`) becomes exactly zero.

    Activations near float32's limit (~1e37 and more) overflow the channel sums and differences, so
    such a frame is first scaled by its largest magnitude and then centred: on a GPU always (a check
    would wait for the device), on the CPU only when the direct way overflowed (reading the check
    costs nothing there).
    """
    x = _finite_copy(activations)
    if x.is_cpu:
        xt, spread = _centre(x)
        if bool(torch.isfinite(spread).all()):
            return xt, spread
        x = _finite_copy(activations)  # the first copy was centred in place
    big = x.abs().amax(dim=(1, 2)).clamp_min_(1e-30)  # (B,): scale before anything is summed or squared
    xt, spread = _centre(x.mul_((1.0 / big)[:, None, None]))
    # capped at float32's largest number: a zero times the scale stays zero (inf would give NaN)
    return xt, (spread * big).clamp_max_(torch.finfo(torch.float32).max)


def _finite_copy(activations: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> a new float32 ``(B, C, HW)`` tensor, non-finite values replaced by 0."""
    b, c, h, w = activations.shape
    x = activations.detach().reshape(b, c, h * w)
    if x.dtype == torch.float32:
        # nan_to_num returns a new tensor: the caller's activations are never modified, and the
        # in-place steps of _centre work on our own copy.
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x.to(torch.float32).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)  # .to copied already


def _centre(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre our own ``(B, C, N)`` float32 copy per channel and scale each frame to unit max, in
    place; returns it and the ``(B,)`` scale (non-finite where float32 overflowed)."""
    positions = x.shape[2]
    mean = x.mean(dim=2, keepdim=True)  # (B, C, 1)
    x.sub_(mean)
    spread = x.abs().amax(dim=(1, 2))  # (aminmax with a dim is 10x slower on the CPU)
    # Scale each frame to unit max so every threshold is relative: untrained networks give
    # activations of 1e-8 and fp16 ones are coarse (and so that energies neither overflow nor
    # underflow). A constant frame becomes exactly zero.
    inv = 1.0 / spread.clamp_min(1e-30)
    x.mul_(inv[:, None, None])
    ok = _varies(x.square().sum(dim=(1, 2)), (mean * inv[:, None, None]).square().sum(dim=(1, 2)), positions)
    # A zeroed frame has no singular values, so its scale never shows: no need to special-case it.
    x.mul_(ok[:, None, None])
    return x, spread


def exact(xt: torch.Tensor, n: int) -> Components:
    """Top ``n`` components of ``X`` (given as ``xt = X^T``, ``(B, C, N)``) by eigendecomposition of
    the smaller Gram matrix (``X X^T`` when ``N <= C``, else ``X^T X``)."""
    _, c, big_n = xt.shape
    if big_n <= c:
        gram = xt.mT @ xt  # X X^T, (B, N, N)
        evals, evecs = torch.linalg.eigh(gram)
        s = evals[:, big_n - n :].flip(-1).clamp_min_(0.0).sqrt_()
        u = evecs[:, :, big_n - n :].flip(-1)
        # v_k = X^T u_k / s_k, computed as (U^T X)^T: half the time of X^T U for this layout.
        v = (u.mT @ xt.mT).mT * inverse(s)[:, None, :]
    else:
        gram = xt @ xt.mT  # X^T X, (B, C, C)
        evals, evecs = torch.linalg.eigh(gram)
        s = evals[:, c - n :].flip(-1).clamp_min_(0.0).sqrt_()
        v = evecs[:, :, c - n :].flip(-1)
        u = (xt.mT @ v) * inverse(s)[:, None, :]  # u_k = X v_k / s_k
    return Components(u, s, v, gram.diagonal(dim1=1, dim2=2).sum(-1))


def gram_cpu(activations: torch.Tensor, n: int, gram: Gram | None = None) -> Components | None:
    """:func:`exact` for CPU activations ``(B, C, H, W)`` with ``HW <= C``, in numpy and LAPACK.

    Right after a forward pass every tensor op costs 5 to 30 us whatever its size, and at a 7 x 7
    map there are few flops: so one frame at a time, each step one BLAS or LAPACK call. Centre the
    channels (``X_c``), the Gram matrix of the positions ``X_c X_c^T`` (``syrk``: one triangle,
    half the flops of a product), its ``n`` leading eigenpairs only (``syevr``, bisection and
    inverse iteration for the wanted ones), and the sums the sign rule reads,
    ``1^T v_k = u_k^T X_c 1 / s_k``. The loadings ``v_k = X_c^T u_k / s_k`` themselves (a product
    that reads every activation again) are formed only where such a sum is too small to decide a
    sign (:func:`~eigencam_live.cam.tail.clear_sums`).

    ``gram``: :class:`Gram` of these activations if the backend computed it beside them (the ONNX
    Runtime backend does, while they are in its caches); used instead of centring and multiplying
    here, never modified (the upper triangle of its matrix is read), and the activations are then
    not read at all unless loadings are formed.

    Returns numpy arrays (the tail runs on them in numpy), or ``None``, for :func:`centred_matrix` and :func:`exact` to take over, where float32
    squares are not to be trusted: activations that are not finite or overflow when squared, that
    are too small for float32 squares (mean square under ``MIN_MEAN_SQUARE``), or that centring
    leaves with under ``MIN_CENTRED_ENERGY`` of their energy (near-constant frames, whose few
    varying digits the robust path scales up before it squares them).
    """
    _one_blas_thread()
    b = activations.shape[0]
    frames = _frames(activations) if gram is None else None  # read only if needed: 25 us after a forward
    given = zip(*gram, strict=True) if gram is not None else (None,) * b
    found = [_gram_frame(frames[i] if frames is not None else None, n, g, activations.shape[1])
             for i, g in enumerate(given)]
    if any(f is None for f in found):
        return None
    if b == 1:  # views, not copies: each call costs 5 to 10 us right after a forward pass
        u, s, energy, total, signed, spread = (part[None] for part in found[0])
    else:
        u, s, energy, total, signed, spread = (np.stack(parts) for parts in zip(*found, strict=True))
    if signed.all():
        return Components(u, s, None, energy, total, spread)
    # a sum too small to decide a sign: the loadings, for every frame (the tail takes one form)
    frames = _frames(activations) if frames is None else frames
    return Components(u, s, np.stack([_loadings(frames[i], u[i], s[i]) for i in range(b)]), energy, spread=spread)


def _frames(activations: torch.Tensor) -> np.ndarray:
    """``(B, C, H, W)`` CPU activations as a float32 ``(B, C, HW)`` numpy array (a view where they
    are float32 and contiguous)."""
    b, c, h, w = activations.shape
    x = activations.detach() if activations.requires_grad else activations
    return (x if x.dtype == torch.float32 else x.float()).numpy().reshape(b, c, h * w)


@functools.cache
def _one_blas_thread() -> None:
    """Run OpenBLAS (numpy's and scipy's) on one thread, once for the process. The step's products
    are small, and a second thread has to be woken for each: beside a network and video threads on
    two cores it waited for the busy core, 3 ms for a 0.05 ms product (resnet50's 2048 x 84 map).
    torch's own kernels (MKL, OpenMP) are not OpenBLAS and keep their threads."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def _loadings(a: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``v_k = X_c^T u_k / s_k`` ``(C, n)`` from one frame's raw activations ``a (C, N)``: ``u``
    is centred first (as ``J u``), so that ``X^T u = X_c^T u`` exactly."""
    return (a @ (u - u.mean(axis=0))) * inverse(s)


def _gram_frame(a: np.ndarray | None, n: int, given: tuple[np.ndarray, np.ndarray, np.ndarray] | None, c: int):
    """``(u (N, n), s (n,), energy (), total (n,), signed (), spread ())`` for one frame of ``c``
    channels, from its activations ``a (C, N)`` or the Gram ``given`` for them, or ``None``.
    ``signed`` (a bool array): whether the sums ``total`` decide every sign that shows (else the
    caller forms the loadings); ``spread``: ``||X_c 1||``."""
    with np.errstate(all="ignore"):  # overflow and NaN are checked below, on the energies
        if given is None:
            # centred first: the Gram of the centred values carries rounding errors of their energy
            # (J X X^T J, cheaper by one pass, carried errors of the raw energy: 1e-4 off on RegNet)
            big_n = a.shape[1]
            mean = a.mean(axis=1)  # (C,), over the positions
            centred = a - mean[:, None]
            sums = np.add.reduce(centred, axis=0)  # X_c 1, (N,)
            gram = blas.ssyrk(1.0, centred.T, lower=0)  # upper triangle of X_c X_c^T (N, N)
            lower, own = 0, 1
            energy = float(np.trace(gram))  # ||X_c||^2, the sum of every eigenvalue
            raw = energy + big_n * float(np.dot(mean, mean))  # ||X||^2 = ||X_c||^2 + N ||mean||^2
        else:
            gram, sums, raw = given
            big_n = gram.shape[0]
            # symmetric: a C-ordered matrix is its own transpose in LAPACK's order; whichever
            # triangle LAPACK reads is then the caller's upper one. The caller's array is kept.
            lower, own = (0, 0) if gram.flags.f_contiguous else (1, 0)
            gram = gram if gram.flags.f_contiguous else gram.T
            energy, raw = float(gram.trace()), float(raw)
        if not (math.isfinite(energy) and math.isfinite(raw) and raw >= MIN_MEAN_SQUARE * big_n * c
                and energy >= MIN_CENTRED_ENERGY * raw):
            return None
        # the n largest eigenpairs, ascending; overwritten only when the Gram is ours
        lam, vecs, _, _, info = lapack.ssyevr(gram, compute_v=1, range="I", lower=lower, il=big_n - n + 1, iu=big_n,
                                              overwrite_a=own)
        if info != 0:
            return None
        lam, u = lam[n - 1 :: -1], vecs[:, n - 1 :: -1]  # descending
        s = np.sqrt(np.maximum(lam, 0.0))
        inv = inverse(s)
        total = (sums @ u) * inv  # 1^T v_k = 1^T X_c^T u_k / s_k
        # a component under the noise floor (or without variance: inv 0) has no sign that shows
        signed = (clear_sums(total, c) | (lam <= NOISE * energy)).all()
        return u, s, np.array(energy, dtype=np.float32), total, signed, np.sqrt(np.dot(sums, sums))


def _ritz(xt: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rayleigh-Ritz on the range basis ``q (B, N, r)``: ``s (B, r)`` descending, the right Ritz
    vectors ``v (B, C, r)`` and the rotation ``w (B, r, r)`` (left Ritz vectors ``q w``)."""
    bt = xt @ q  # (B, C, r) = X^T Q
    lam, w = torch.linalg.eigh(bt.mT @ bt)  # Q^T X X^T Q, ascending
    lam, w = lam.flip(-1).clamp_min_(0.0), w.flip(-1)
    s = lam.sqrt()
    return s, (bt @ w) * inverse(s)[:, None, :], w


def randomized(
    xt: torch.Tensor,
    n: int,
    *,
    watch: int,
    oversample: int = 6,
    n_iter: int = 2,
    start: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    tol: float = TOLERANCE,
    max_iter: int = MAX_ITER,
) -> Components:
    """Top ``n`` components of ``X`` (given as ``xt = X^T``, ``(B, C, N)``) by randomized subspace
    iteration (Halko, Martinsson & Tropp 2011) with a Rayleigh-Ritz step after each power iteration.

    Accurate by construction: after at least ``n_iter`` power iterations it stops only when, for
    every component ``1..watch`` of every frame, the Davis-Kahan bound on the angle between its Ritz
    vector and the exact singular vector, ``s_k ||X v_k - s_k u_k|| / gap_k`` (``gap_k`` the distance
    from ``s_k^2`` to its neighbours' Ritz values), is below ``tol``; or after ``max_iter``. The map
    returned is ``X v_k``, one half-step past the bounded vector.

    ``start`` is an optional ``(C, k)`` or ``(B, C, k)`` basis (e.g. the previous frame's right
    singular vectors) for the first columns of the sketch.
    """
    b, c, big_n = xt.shape
    x = xt.mT  # (B, N, C), a view
    r = min(n + oversample, big_n, c)
    q = torch.linalg.qr(x @ initial_sketch(b, c, r, x, start, generator), mode="reduced")[0]
    for done in range(max_iter + 1):  # power iterations applied to q so far
        s, v, w = _ritz(xt, q)
        z = x @ v  # (B, N, r): X v_k, = s_k u_k once converged
        if done == max_iter or (done >= n_iter and _converged(z, q @ w[:, :, :watch], s, watch, tol)):
            break
        q = torch.linalg.qr(z, mode="reduced")[0]
    return Components(z[:, :, :n] * inverse(s[:, :n])[:, None, :], s[:, :n], v[:, :, :n], (xt * xt).sum(dim=(1, 2)))


def _converged(z: torch.Tensor, u: torch.Tensor, s: torch.Tensor, watch: int, tol: float) -> bool:
    """Whether the Davis-Kahan bound of every watched Ritz pair is below ``tol`` (see :func:`randomized`)."""
    lam = s * s  # (B, r), descending
    resid = torch.linalg.vector_norm(z[:, :, :watch] - u * s[:, None, :watch], dim=1)  # ||X v - s u||
    # neighbours: +inf above the first, 0 below the last of the sketch
    padded = torch.cat((torch.full_like(lam[:, :1], float("inf")), lam, torch.zeros_like(lam[:, :1])), dim=1)
    gap = torch.minimum(padded[:, :watch] - lam[:, :watch], lam[:, :watch] - padded[:, 2 : watch + 2])
    # a component without variance (s = 0) has nothing to converge to
    bound = torch.where(lam[:, :watch] > 0, s[:, :watch] * resid / gap.clamp_min(1e-30), 0.0)
    return bool((bound <= tol).all())


def sync_free(
    xt: torch.Tensor,
    n: int,
    *,
    start: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    oversample: int = 6,
    steps: int = SYNC_FREE_STEPS,
    sweeps: int = 6,
) -> Components:
    """Top ``n`` components of ``X`` (``xt = X^T``, ``(B, C, N)``) with no host synchronisation.

    The Gram matrix of the smaller side, then ``steps`` subspace iterations on it (one product of a
    ``min(N, C)``-square matrix each, CholeskyQR2 between them) and Rayleigh-Ritz with
    :func:`~eigencam_live.cam.linalg.jacobi_eigh`: fixed sequences of tensor ops, no data-dependent
    control flow, so the number of steps is fixed and ample rather than tested. ``start``
    (``(C, k)`` or ``(B, C, k)``) seeds the first columns (warm start from a previous frame).
    """
    b, c, big_n = xt.shape
    x = xt.mT
    positions = big_n <= c  # iterate on X X^T (positions) when it is the smaller Gram matrix
    gram = x @ xt if positions else xt @ x
    side = gram.shape[-1]
    r = min(n + oversample, side)
    # warm start: the previous loadings v map to positions as X v
    sketch = initial_sketch(b, c, r, x, start, generator)
    w = cholesky_qr(x @ sketch if positions else sketch)
    # keep the iterates O(1): the Gram's entries are up to ~N C (activations scaled to max 1)
    energy = gram.diagonal(dim1=1, dim2=2).sum(-1)
    unit = gram / (energy[:, None, None] + 1e-30)
    for _ in range(steps):
        w = cholesky_qr(unit @ w)
    lam, rot = jacobi_eigh(w.mT @ gram @ w, sweeps=sweeps)  # Rayleigh-Ritz, descending
    s = lam[:, :n].clamp_min(0.0).sqrt()
    w = w @ rot[:, :, :n]
    if positions:  # w holds u
        return Components(w, s, (xt @ w) * inverse(s)[:, None, :], energy)
    return Components((x @ w) * inverse(s)[:, None, :], s, w, energy)
