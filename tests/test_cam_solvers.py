"""Every solver returns the same Components, and the one tail turns them into the same maps.

The solvers differ only in how they find the leading components of X (positions x channels,
centred): the exact Gram eigendecomposition, the CPU Gram solver straight from the activations, the
adaptive randomized iteration and the sync-free GPU iteration (run here on the CPU).
"""

from __future__ import annotations

import pytest
import torch

from eigencam_live.cam import Gram, SubspaceTracker, eigen_cam, solvers
from eigencam_live.cam.tail import FIRM, cam_from_components, rule_signs


def activations(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Random activations with a few structured components, so the spectrum has clear gaps."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, c, h, w, generator=g)
    a[:, : c // 4, : h // 2, : w // 2] += 3.0
    a[:, c // 4 : c // 2, h // 2 :, w // 3 :] -= 2.0
    return a


def undecided(c: int = 64, h: int = 6, w: int = 6, seed: int = 0, k: int = 7) -> torch.Tensor:
    """``(1, C, H, W)`` activations whose first ``k`` components' maps correlate with the
    channel-summed activation at ``|r|`` about 0.1 (see :func:`firmness`): the sign rule decides
    them, but not firmly (``tail.FIRM``), so a video tracker keeps the previous frame's sign. The
    channel sum lies along a weak component of its own; the others' loadings sum to 0.08."""
    g = torch.Generator().manual_seed(seed)
    ones = torch.ones(c, dtype=torch.float64) / c**0.5
    r = torch.randn(c, k, generator=g, dtype=torch.float64)
    q = torch.linalg.qr(r - ones[:, None] * (ones @ r))[0]  # orthonormal, orthogonal to the sum
    v = torch.cat([q + 0.01 * ones[:, None], ones[:, None]], dim=1)  # (C, k + 1)
    p = torch.randn(h * w, k + 1, generator=g, dtype=torch.float64)
    u = torch.linalg.qr(p - p.mean(0))[0]  # centred positions
    s = torch.tensor([10.0, 8.0, 6.5, 5.0, 4.0, 3.0, 2.5, 8.0][:k] + [1.0], dtype=torch.float64)
    x = (u * s) @ v.T + 0.01 * torch.randn(h * w, c, generator=g, dtype=torch.float64)
    return (x.T.reshape(1, c, h, w) + torch.rand(1, c, 1, 1, generator=g, dtype=torch.float64)).float()


def firmness(a: torch.Tensor) -> torch.Tensor:
    """``|r|`` of each component's map of one frame ``(1, C, H, W)`` with its channel-summed
    activation (float64 SVD): what ``tail.FIRM`` is compared with."""
    x = a[0].reshape(a.shape[1], -1).double().T
    x = x - x.mean(0)
    u = torch.linalg.svd(x, full_matrices=False)[0]
    sums = x.sum(1)
    return (u.T @ sums).abs() / sums.norm()


SHAPES = [(2, 64, 5, 7), (1, 16, 9, 11)]  # HW <= C, and HW > C


def all_solvers(a: torch.Tensor, n: int) -> dict[str, solvers.Components]:
    xt, _ = solvers.centred_matrix(a)
    found = {
        "exact": solvers.exact(xt, n),
        "randomized": solvers.randomized(xt, n, watch=n),
        "sync-free": solvers.sync_free(xt, n),
    }
    if a.shape[2] * a.shape[3] <= a.shape[1]:
        # numpy arrays, and no loadings where their sums decide every sign
        gram = solvers.Components(*(None if t is None else torch.from_numpy(t) for t in solvers.gram_cpu(a, n)))
        # gram_cpu works in the activations' units; the others on X scaled to max 1
        scale = xt.new_tensor(1.0) / solvers.centred_matrix(a)[1]
        found["gram-cpu"] = solvers.Components(gram.u, gram.s * scale[:, None], gram.v, gram.energy * scale**2, gram.total)
    return found


@pytest.mark.parametrize("shape", SHAPES, ids=["HW<=C", "HW>C"])
def test_every_solver_returns_the_same_components(shape):
    a = activations(*shape)
    xt, _ = solvers.centred_matrix(a)
    x = xt.mT.double()
    b, n = shape[0], 4
    _, s_ref, _ = torch.linalg.svd(x, full_matrices=False)
    for name, (u, s, v, energy, total, _) in all_solvers(a, n).items():
        big_n, c = x.shape[1], x.shape[2]
        if v is None:  # the CPU Gram solver gives the sums of the loadings the sign rule reads
            assert name == "gram-cpu" and total.shape == (b, n) and total.dtype == torch.float32
            v = ((x.mT @ u.double()) / s.double()[:, None, :]).float()  # X^T u_k / s_k
            torch.testing.assert_close(total, v.sum(dim=1), rtol=1e-4, atol=1e-4)
        else:
            assert total is None, name
        assert (u.shape, s.shape, v.shape, energy.shape) == ((b, big_n, n), (b, n), (b, c, n), (b,)), name
        assert all(t.dtype == torch.float32 for t in (u, s, v, energy)), name
        torch.testing.assert_close(s.double(), s_ref[:, :n], rtol=1e-4, atol=0, msg=name)
        torch.testing.assert_close(energy.double(), (x * x).sum(dim=(1, 2)), rtol=1e-4, atol=0, msg=name)
        # unit loadings, and the definition's identity X v_k = s_k u_k
        torch.testing.assert_close(v.double().norm(dim=1), torch.ones(b, n, dtype=torch.float64), rtol=0, atol=1e-4)
        torch.testing.assert_close(x @ v.double(), u.double() * s.double()[:, None, :], rtol=0, atol=1e-4 * float(s.max()))


@pytest.mark.parametrize("shape", SHAPES, ids=["HW<=C", "HW>C"])
def test_one_tail_gives_every_solver_the_same_maps(shape):
    a = activations(*shape, seed=1)
    _, spread = solvers.centred_matrix(a)
    b, _, h, w = shape
    results = {
        name: cam_from_components(found, spread[:, None], (b, h, w), 2, name, SubspaceTracker())
        for name, found in all_solvers(a, 4).items()
    }
    want = results.pop("exact")
    for name, got in results.items():
        for field in ("maps", "projections", "singular_values", "explained"):
            ref = getattr(want, field)
            torch.testing.assert_close(getattr(got, field), ref, rtol=0, atol=1e-3 * float(ref.abs().max()), msg=(name, field))


def test_rule_signs_fallback_is_the_largest_loading():
    v = torch.zeros(1, 6, 3)
    v[0, :, 0] = torch.tensor([0.5, -0.5, 0.1, -0.1, 0.0, 0.0])  # sums to 0; tie between +-0.5: +
    v[0, :, 1] = torch.tensor([0.2, -0.7, 0.5, 0.0, 0.0, 0.0])  # sums to 0; largest is negative
    v[0, :, 2] = torch.tensor([-0.1, -0.2, 0.9, 0.0, 0.0, 0.0])  # sums positive
    assert rule_signs(v).tolist() == [[1.0, -1.0, 1.0]]
    assert rule_signs(-v).tolist() == [[1.0, 1.0, -1.0]]  # the tie stays +, the others flip


def test_tracker_follows_a_change_of_component_count():
    """A basis of 5 components, then component 7 asks for 7: the first 5 follow the basis, and the
    tracker keeps the new 7."""
    a = undecided(64, 6, 6, seed=2)
    assert float(firmness(a)[:5].max()) < FIRM  # the rule does not decide them firmly: the tracker does
    tracker = SubspaceTracker()
    first = eigen_cam(a, 1, tracker=tracker)
    assert tracker.basis.shape == (36, 5)  # the 6 x 6 positions
    tracker.update(-tracker.basis[None])
    seventh = eigen_cam(a, 7, tracker=tracker)
    assert tracker.basis.shape == (36, 7)
    plain = eigen_cam(a, 7)
    torch.testing.assert_close(seventh.projections, plain.projections)  # component 7 had no basis: the rule
    flipped = eigen_cam(a, 1, tracker=SubspaceTracker())
    torch.testing.assert_close(flipped.projections, first.projections)
    # and the basis the tracker now holds carries the flipped signs of the first five
    assert float((tracker.basis[:, 0] * first_basis(a)[:, 0]).sum()) < 0


def first_basis(a: torch.Tensor) -> torch.Tensor:
    tracker = SubspaceTracker()
    eigen_cam(a, tracker=tracker)
    return tracker.basis


def test_the_basis_is_read_only_state():
    """Reading the basis never changes anything: the tracker has one form of state."""
    a = activations(2, 64, 4, 4, seed=3)
    tracker = SubspaceTracker()
    eigen_cam(a, tracker=tracker)
    before = tracker.basis
    assert tracker.basis is before and tracker.basis is before
    assert vars(tracker).keys() == {"match", "_basis"}


def test_a_gram_matrix_from_the_backend_is_read_from_its_upper_triangle_and_kept():
    """``eigen_cam(..., gram=)`` (ONNX Runtime's ``X_c X_c^T``, ``X_c 1`` and ``||X||^2``) gives
    the solver's own map, reads the upper triangle whatever the memory order, leaves the caller's
    matrix as it was, and does not read the activations again (zeros in their place change nothing)."""
    a = activations(2, 64, 5, 7, seed=4)
    raw = a.double().flatten(2)
    x = raw - raw.mean(dim=2, keepdim=True)
    full = (x.mT @ x).float()
    sums, energy = x.sum(dim=1).float(), raw.square().sum(dim=(1, 2)).float()
    want = eigen_cam(a)
    for gram in (full.clone(), torch.triu(full), torch.triu(full).mT.contiguous().mT):  # C order, upper, Fortran
        before = gram.clone()
        for _ in range(2):  # twice: the first call must not have spoilt it
            for seen in (a, torch.zeros_like(a)):
                got = eigen_cam(seen, gram=Gram(gram.numpy(), sums.numpy(), energy.numpy()))  # views
                torch.testing.assert_close(got.maps, want.maps, rtol=0, atol=1e-5)
                torch.testing.assert_close(got.singular_values, want.singular_values, rtol=1e-5, atol=0)
        assert torch.equal(gram, before)


def test_components_under_the_noise_floor_need_no_loadings():
    """A rank-1 map: components 2 to 5 are rounding noise, whose signs never show; their sums
    (noise too) do not make the CPU Gram solver read the activations again for the loadings
    (before, 12 of 60 such maps did)."""
    for seed in range(60):
        g = torch.Generator().manual_seed(seed)
        a = (torch.randn(1, 64, 1, generator=g) @ torch.randn(1, 1, 35, generator=g)).view(1, 64, 5, 7)
        found = solvers.gram_cpu(a, 5)
        assert found.v is None and found.total.shape == (1, 5), seed


def test_the_gram_solver_forms_the_loadings_where_their_sums_decide_nothing(monkeypatch):
    """A last channel that is minus the sum of the others: every component's loadings sum to 0, so
    the sign rule falls back to the largest loading, and the CPU Gram solver forms the loadings for
    it (also from a Gram given by the backend); the maps are the general path's. In a batch where
    another frame's sums decide, that frame's loadings are formed too (the tail takes one form)."""
    some = activations(2, 63, 5, 7, seed=6)
    last = torch.cat((-some[:1].sum(dim=1, keepdim=True), activations(1, 1, 5, 7, seed=7)))  # frame 1's sums decide
    a = torch.cat((some, last), dim=1)  # 64 channels, 35 positions: the CPU Gram solver's case
    x = a.double().flatten(2)
    x = x - x.mean(dim=2, keepdim=True)
    given = Gram(*(t.float().numpy() for t in (x.mT @ x, x.sum(dim=1), a.double().square().sum(dim=(1, 2, 3)))))
    found = solvers.gram_cpu(a, 5)
    assert found.v is not None and found.total is None and found.v.shape == (2, 64, 5)
    calls = []
    gram_cpu = solvers.gram_cpu
    monkeypatch.setattr(solvers, "gram_cpu", lambda *args: calls.append(args[2] is not None) or gram_cpu(*args))
    want, from_given = eigen_cam(a, 2, "exact"), eigen_cam(a, 2, "exact", gram=given)
    assert calls == [False, True]  # (a review: at 33 channels for 35 positions, neither ran it)
    monkeypatch.setattr(solvers, "gram_cpu", lambda *args: None)  # the general path takes over
    general = eigen_cam(a, 2, "exact")
    for got in (want, from_given):
        torch.testing.assert_close(got.projections, general.projections, rtol=1e-4, atol=1e-5)
