"""Small dense linear algebra that never waits for the host.

``torch.linalg.eigh``/``svd``/``qr`` check LAPACK/cuSOLVER error codes after every call; on CUDA that
check reads a flag back to the host (``infos.any().item()``), which stalls the stream once per call
and forbids CUDA-graph capture. The routines here are fixed sequences of tensor ops with no
data-dependent control flow, so a whole Eigen-CAM step can be queued on the GPU (or captured in a
CUDA graph) and the host only waits for the finished frame.

* :func:`cholesky_qr` - orthonormal basis of a tall matrix's columns (shifted CholeskyQR2).
* :func:`jacobi_eigh` - eigendecomposition of small symmetric matrices (parallel-order cyclic
  Jacobi, a fixed number of sweeps; quadratic convergence makes 6 sweeps enough for fp32 at n <= 16).
* :func:`initial_sketch` - the starting block of a randomized subspace iteration.

:func:`eigencam_live.cam.solvers.sync_free` builds the GPU solver on them. They run on any device;
on the CPU ``torch.linalg`` is faster and is what the other solvers use there.
"""

from __future__ import annotations

from functools import cache

import torch

__all__ = ["cholesky_qr", "initial_sketch", "jacobi_eigh"]


def cholesky_qr(y: torch.Tensor, passes: int = 2) -> torch.Tensor:
    """Orthonormal basis of the columns of ``y (B, N, r)`` (``N >= r``), float32.

    Shifted CholeskyQR2: ``Q = Y R^-1`` with ``R^T R = Y^T Y + shift``; a second pass restores the
    orthogonality the first loses when ``Y`` is ill-conditioned. A zero ``Y`` gives a zero ``Q``
    (no NaN), because the shift keeps the Cholesky factor positive definite.
    """
    q = y
    eye = torch.eye(y.shape[-1], dtype=y.dtype, device=y.device)
    for i in range(passes):
        g = q.transpose(1, 2) @ q
        trace = g.diagonal(dim1=1, dim2=2).sum(-1)
        # A relative shift on the first pass only (it is what makes the factorisation safe for
        # nearly rank-deficient sketches); an absolute floor keeps an all-zero sketch finite.
        rel = 1e-5 if i == 0 else 1e-7
        shift = (rel * trace + 1e-30)[:, None, None]
        chol, _ = torch.linalg.cholesky_ex(g + shift * eye)
        q = torch.linalg.solve_triangular(chol, q.transpose(1, 2), upper=False).transpose(1, 2)
    return q


@cache
def _round_robin(n: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Pairings of ``n`` (even) indices into ``n - 1`` rounds of ``n / 2`` disjoint pairs."""
    players = list(range(n))
    rounds = []
    for _ in range(n - 1):
        half = n // 2
        p = tuple(min(players[i], players[n - 1 - i]) for i in range(half))
        q = tuple(max(players[i], players[n - 1 - i]) for i in range(half))
        rounds.append((p, q))
        players = [players[0], players[-1], *players[1:-1]]
    return tuple(rounds)


_ROUNDS: dict[tuple[int, torch.device], list[tuple[torch.Tensor, torch.Tensor]]] = {}


def _round_robin_tensors(n: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`_round_robin` as index tensors on ``device``, built once: a copy from pageable host
    memory to a GPU waits for the whole stream."""
    key = (n, device)
    if key not in _ROUNDS:
        _ROUNDS[key] = [(torch.tensor(p, device=device), torch.tensor(q, device=device)) for p, q in _round_robin(n)]
    return _ROUNDS[key]


def jacobi_eigh(a: torch.Tensor, sweeps: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigendecomposition of symmetric ``a (B, n, n)``: eigenvalues ``(B, n)`` descending and
    eigenvectors ``(B, n, n)`` (columns), float32, with no host synchronisation.

    Cyclic Jacobi in round-robin order: each round applies ``n / 2`` disjoint rotations at once.
    Meant for small ``n`` (the Rayleigh-Ritz matrix of a randomized sketch, ``n ~ 8 to 16``).
    """
    b, n, _ = a.shape
    work = a.to(torch.float32)
    if n % 2:  # pad to even with a decoupled zero row/column: its eigenvalue 0 sorts last
        work = torch.nn.functional.pad(work, (0, 1, 0, 1))
    m = work.shape[-1]
    vecs = torch.eye(m, dtype=work.dtype, device=work.device).expand(b, m, m).contiguous()
    rounds = _round_robin_tensors(m, work.device)
    tiny = torch.finfo(torch.float32).tiny
    for _ in range(sweeps):
        for p, q in rounds:
            app = work[:, p, p]
            aqq = work[:, q, q]
            apq = work[:, p, q]
            small = apq.abs() <= tiny
            theta = (aqq - app) / (2.0 * torch.where(small, torch.ones_like(apq), apq))
            sign = torch.where(theta >= 0, 1.0, -1.0)
            t = sign / (theta.abs() + torch.sqrt(theta * theta + 1.0))
            t = torch.where(small, torch.zeros_like(t), t)
            c = torch.rsqrt(t * t + 1.0)
            s = t * c
            rot = torch.zeros_like(work)
            rot[:, p, p] = c
            rot[:, q, q] = c
            rot[:, p, q] = s
            rot[:, q, p] = -s
            work = rot.transpose(1, 2) @ work @ rot
            vecs = vecs @ rot
    # The padding index is never rotated (its off-diagonal entries stay exactly 0): drop it first.
    evals = work.diagonal(dim1=1, dim2=2)[:, :n]
    vecs = vecs[:, :n, :n]
    order = evals.argsort(dim=-1, descending=True)
    return evals.gather(1, order), vecs.gather(2, order[:, None, :].expand(b, n, n))


def initial_sketch(
    b: int, c: int, r: int, like: torch.Tensor, start: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """``(B, C, r)`` starting block of a randomized subspace iteration, ``like``'s dtype and device.

    Gaussian (a fixed seed unless ``generator`` is given), one draw shared by every frame of the
    batch so that a frame's result does not depend on its position in the batch; the first columns
    are replaced by ``start`` (``(C, k)`` or ``(B, C, k)``, e.g. the previous frame's basis).
    """
    if generator is None:
        generator = torch.Generator(device=like.device).manual_seed(0)
    omega = torch.empty((c, r), dtype=like.dtype, device=like.device).normal_(generator=generator)
    omega = omega.expand(b, c, r)
    if start is not None:
        start = start.to(device=like.device, dtype=like.dtype)
        if start.dim() == 2:
            start = start.unsqueeze(0).expand(b, -1, -1)
        if start.shape[0] == b and start.shape[1] == c:
            k = min(start.shape[-1], r)
            omega = omega.clone()
            # A trace of the Gaussian keeps the block full rank even when ``start`` has zero
            # columns (a basis left by a blank frame); too small to slow the warm start.
            omega[:, :, :k] = start[:, :, :k] + 1e-4 * omega[:, :, :k]
    return omega
