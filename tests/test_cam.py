"""Eigen-CAM math: against a plain numpy SVD of the definition, against pytorch_grad_cam.EigenCAM,
and the documented behaviours (sign rule, NaN safety, constant input, dtypes, batching, video state).

Activations come from real torchvision architectures (random weights, never downloaded) fed with
structured scenes, so the spectra are those of real feature maps, not of iid noise.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
import torch

from eigencam_live.cam import (
    EXACT_MAX_DIM,
    SPECTRUM_SIZE,
    SubspaceTracker,
    TemporalSmoother,
    eigen_cam,
    normalize_maps,
    solvers,
)
from eigencam_live.cam.tail import FIRM
from eigencam_live.models import ActivationCapture, load_model

from .conftest import scene
from .test_cam_solvers import firmness, first_basis, undecided

try:  # numpy's OpenBLAS threads fight torch's for the 2 cores: 10x slower SVDs without this
    from threadpoolctl import threadpool_limits

    def one_blas_thread():
        return threadpool_limits(1, user_api="blas")
except ImportError:  # pragma: no cover
    one_blas_thread = contextlib.nullcontext

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def to_input(frames: list[np.ndarray]) -> torch.Tensor:
    """BGR uint8 frames -> normalised RGB network input (B, 3, H, W)."""
    x = torch.stack([torch.from_numpy(f[..., ::-1].copy()).permute(2, 0, 1) for f in frames]).float() / 255.0
    return (x - MEAN) / STD


def reference(acts: torch.Tensor, k: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition, in float64 numpy: per frame, maps (B, H, W) in [0, 1], signed projections
    (B, H, W) and singular values (B, min(HW, C)). Sign rule: loadings v_k sum positive."""
    maps, projs, svals = [], [], []
    with one_blas_thread():
        return _reference(acts, k, maps, projs, svals)


def _reference(acts, k, maps, projs, svals):
    for a in acts.detach().double().numpy():
        c, h, w = a.shape
        x = a.reshape(c, h * w).T
        x = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        v = vt[k - 1] if vt[k - 1].sum() >= 0 else -vt[k - 1]
        p = x @ v
        m = np.maximum(p, 0.0)
        m = (m - m.min()) / (m.max() - m.min())
        maps.append(m.reshape(h, w))
        projs.append(p.reshape(h, w))
        svals.append(s)
    return np.stack(maps), np.stack(projs), np.stack(svals)


def pearson(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


# (model, layers): the default (last) layer and a shallower one whose map is larger than its channel
# count, so the randomized sketch (rank 11) is far smaller than the matrix.
ARCHS = {
    "resnet18": ["layer4", "layer3", "layer2"],  # (512, 4, 5), (256, 8, 10), (128, 16, 20)
    "mobilenet_v3_small": ["features", "features.3"],  # (576, 4, 5), (24, 16, 20)
    "regnet_y_400mf": ["trunk_output"],  # (440, 4, 5)
}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [scene(128, 160, corner=c, seed=i) for i, c in enumerate(("tl", "br", "c"))]


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {name: load_model(name, "none") for name in ARCHS}


@pytest.fixture(scope="module")
def acts(nets, frames) -> dict[tuple[str, str], torch.Tensor]:
    """Activations of every (model, layer) in ARCHS on the three scenes."""
    x = to_input(frames)
    out = {}
    for name, layers in ARCHS.items():
        with ActivationCapture(nets[name].net, layers) as cap, torch.inference_mode():
            nets[name].net(x)
        for layer in layers:
            out[(name, layer)] = cap.outputs[layer].clone()
    return out


CASES = [(name, layer) for name, layers in ARCHS.items() for layer in layers]


@pytest.fixture
def general_path(monkeypatch):
    """Turn off the CPU Gram solver of the exact method (``solvers.gram_cpu``): the robust
    preparation (``centred_matrix``) and ``solvers.exact`` run instead."""
    monkeypatch.setattr(solvers, "gram_cpu", lambda *args: None)


# -- the definition ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["exact", "exact-general", "randomized"])
@pytest.mark.parametrize("case", CASES, ids=["/".join(c) for c in CASES])
def test_maps_equal_numpy_svd_of_the_definition(acts, case, method, request):
    a = acts[case]
    if method == "exact-general":
        request.getfixturevalue("general_path")
        method = "exact"
    for k in (1, 2):
        want, want_proj, want_s = reference(a, k)
        res = eigen_cam(a, k, method)
        assert res.method == method and res.component == k
        assert res.maps.dtype == torch.float32 and res.maps.shape == want.shape
        for i in range(a.shape[0]):
            # r is signed: the sign rule must agree with the reference too.
            assert pearson(res.maps[i], want[i]) >= 0.999, (case, method, k, i)
            assert pearson(res.projections[i], want_proj[i]) >= 0.999
        # projections are X v_k in the activations' own units
        scale = np.abs(want_proj).max()
        assert np.abs(res.projections.numpy() - want_proj).max() <= 2e-2 * scale
        got_s = res.singular_values.numpy()
        n = got_s.shape[1]
        assert n >= min(SPECTRUM_SIZE, want_s.shape[1])
        np.testing.assert_allclose(got_s, want_s[:, :n], rtol=1e-2 if method == "randomized" else 1e-4)
        want_ex = want_s[:, :n] ** 2 / (want_s**2).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(res.explained.numpy(), want_ex, rtol=2e-2, atol=1e-5)
        assert float(res.maps.min()) == 0.0 and float(res.maps.max()) == 1.0


def test_auto_picks_exact_for_small_and_randomized_for_large():
    g = torch.Generator().manual_seed(1)
    small = torch.randn(1, 64, 8, 8, generator=g)
    assert eigen_cam(small).method == "exact"
    big = torch.randn(1, EXACT_MAX_DIM + 16, 20, 20, generator=g)  # min(HW, C) > EXACT_MAX_DIM
    assert eigen_cam(big).method == "randomized"


def test_sign_rule_map_correlates_with_channel_sum(acts):
    """Documented rule: v_k sums positive, i.e. the projection correlates positively with X 1."""
    a = acts[("resnet18", "layer4")]
    res = eigen_cam(a)
    for i in range(a.shape[0]):
        x = a[i].reshape(a.shape[1], -1).double()
        summed = (x - x.mean(dim=1, keepdim=True)).sum(dim=0)
        assert pearson(res.projections[i], summed) > 0


def test_sign_is_deterministic_and_follows_the_data(acts):
    a = acts[("mobilenet_v3_small", "features")]
    first = eigen_cam(a)
    for _ in range(3):
        again = eigen_cam(a.clone())
        assert torch.equal(again.maps, first.maps)
    # Negated activations flip the map: the sign is a property of the data, not of LAPACK.
    neg = eigen_cam(-a)
    torch.testing.assert_close(neg.projections, -first.projections, rtol=1e-4, atol=1e-4 * float(first.projections.abs().max()))


def test_component_two_differs_from_one(acts):
    a = acts[("resnet18", "layer3")]
    one, two = eigen_cam(a, 1), eigen_cam(a, 2)
    for i in range(a.shape[0]):
        # the signed projections of two singular directions are orthogonal (X v1 . X v2 = 0)
        assert abs(pearson(one.projections[i], two.projections[i])) < 1e-3
        assert pearson(one.maps[i], two.maps[i]) < 0.9
    torch.testing.assert_close(one.explained, two.explained)


def test_batch_equals_frame_by_frame(acts):
    a = acts[("resnet18", "layer2")]
    for method in ("exact", "randomized"):
        batch = eigen_cam(a, method=method)
        for i in range(a.shape[0]):
            single = eigen_cam(a[i : i + 1], method=method)
            # batched and single matrix products round differently: equal to float32 precision
            torch.testing.assert_close(batch.maps[i], single.maps[0], atol=1e-3, rtol=0)
            assert pearson(batch.maps[i], single.maps[0]) >= 0.99999
            torch.testing.assert_close(batch.singular_values[i], single.singular_values[0], rtol=1e-5, atol=0)
    # (C, H, W) is one frame
    torch.testing.assert_close(eigen_cam(a[0]).maps, eigen_cam(a[:1]).maps)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input(acts, dtype):
    a = acts[("resnet18", "layer4")].to(dtype)
    res = eigen_cam(a)
    assert res.maps.dtype == torch.float32 and res.singular_values.dtype == torch.float32
    want, _, _ = reference(a.float())  # the same rounded values, decomposed in float64
    for i in range(a.shape[0]):
        assert pearson(res.maps[i], want[i]) >= 0.999
    full, _, _ = reference(acts[("resnet18", "layer4")])
    for i in range(a.shape[0]):
        assert pearson(res.maps[i], full[i]) >= 0.99  # and close to the fp32 map


def test_nan_and_inf_do_not_poison_the_map(acts):
    a = acts[("mobilenet_v3_small", "features")].clone()
    bad = a.clone()
    bad[0, 3, 1, 2] = float("nan")
    bad[0, 10, 0, 0] = float("inf")
    bad[1, :, 2, 2] = float("-inf")
    bad[2, 7] = float("nan")
    before = bad.clone()
    res = eigen_cam(bad)
    for t in (res.maps, res.projections, res.singular_values, res.explained):
        assert torch.isfinite(t).all()
    # Non-finite values count as 0, exactly as documented (to float32 rounding: the zeroed copy is
    # finite, so the CPU Gram solver takes it, where the robust path took the original).
    zeroed = torch.nan_to_num(before, nan=0.0, posinf=0.0, neginf=0.0)
    torch.testing.assert_close(res.maps, eigen_cam(zeroed).maps, rtol=0, atol=1e-5)
    # and the caller's tensor is untouched (NaNs included)
    torch.testing.assert_close(bad, before, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_input_tensor_unchanged(acts, dtype):
    a = acts[("resnet18", "layer2")].to(dtype)
    before = a.clone()
    for method in ("exact", "randomized"):
        res = eigen_cam(a, method=method, tracker=SubspaceTracker())
        assert torch.equal(a, before)
        for t in (res.maps, res.projections):
            assert t.untyped_storage().data_ptr() != a.untyped_storage().data_ptr()


@pytest.mark.parametrize(
    "acts_const",
    [
        torch.zeros(2, 16, 5, 7),
        torch.full((1, 16, 5, 7), 3.7),
        torch.full((1, 8, 4, 4), 0.1).half(),
        # per-channel constants: nothing varies over the positions
        torch.arange(32, dtype=torch.float32).view(1, 32, 1, 1).expand(1, 32, 6, 5) * 0.37,
    ],
    ids=["zeros", "const", "const-fp16", "per-channel-const"],
)
def test_constant_activations_give_zero_maps(acts_const):
    for method in ("exact", "randomized"):
        res = eigen_cam(acts_const, method=method)
        for t in (res.maps, res.projections, res.singular_values, res.explained):
            assert torch.isfinite(t).all()
        assert float(res.maps.abs().max()) == 0.0
        assert float(res.explained.abs().max()) == 0.0


@pytest.mark.parametrize("case", [("resnet18", "layer4"), ("resnet18", "layer2")], ids=["HW<=C", "HW>C"])
@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_scale_invariance(acts, case, method):
    """Thresholds are relative: untrained networks give activations of 1e-8, others of 1e4; and
    neither float32 underflow (squares of 1e-23) nor overflow (squares of 1e20) blanks a map."""
    a = acts[case]
    base = eigen_cam(a, method=method)
    for factor in (1e-23, 1e-10, 1e-8, 1e4, 1e20):
        res = eigen_cam(a * factor, method=method)
        torch.testing.assert_close(res.maps, base.maps, atol=1e-4, rtol=0, msg=str(factor))
        torch.testing.assert_close(res.singular_values, base.singular_values * factor, rtol=1e-4, atol=0)
        torch.testing.assert_close(res.explained, base.explained, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", [("resnet18", "layer4"), ("resnet18", "layer2")], ids=["HW<=C", "HW>C"])
@pytest.mark.parametrize("method", ["exact", "randomized", "sync-free"])
def test_activations_near_the_float32_limit_give_the_same_maps(acts, case, method):
    """Activations of 3e37 and more overflow float32's channel sums and squares (they gave NaN maps,
    and a LinAlgError from the randomized method): each frame is scaled before anything is summed
    or squared, so the maps equal those of the same activations scaled down."""
    a = acts[case]
    a = a / a.abs().amax()  # max |a| = 1
    kwargs = {"sync_free": True} if method == "sync-free" else {"method": method}
    base = eigen_cam(a, **kwargs)
    big = torch.finfo(torch.float32).max
    for top in (3e37, 1e38, big):
        res = eigen_cam(a * top, **kwargs)
        assert bool(torch.isfinite(res.maps).all()), top
        torch.testing.assert_close(res.maps, base.maps, atol=1e-4, rtol=0, msg=str(top))
        torch.testing.assert_close(res.explained, base.explained, rtol=1e-4, atol=1e-6)
        # the singular values are in the activations' units: exact where float32 holds them
        held = base.singular_values * top < big / 2
        torch.testing.assert_close(res.singular_values[held], (base.singular_values * top)[held], rtol=1e-4, atol=0)
        assert not bool(res.singular_values.isnan().any())
        # a smoothed map (running average of projections that overflow to inf) stays finite too
        smoothed = TemporalSmoother(0.5)(res.projections)
        assert bool(torch.isfinite(smoothed).all())
    # one huge frame in a batch leaves the others' maps as they were (scaled per frame)
    mixed = a.clone()
    mixed[0] *= 3e37
    res = eigen_cam(mixed, **kwargs)
    torch.testing.assert_close(res.maps, base.maps, atol=1e-4, rtol=0)


def test_invalid_arguments():
    a = torch.randn(1, 8, 4, 4)
    with pytest.raises(ValueError, match="component"):
        eigen_cam(a, 0)
    with pytest.raises(ValueError, match="component"):
        eigen_cam(a, 9)  # rank is min(16, 8)
    with pytest.raises(ValueError, match="method"):
        eigen_cam(a, method="svd")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        eigen_cam(torch.randn(8, 16))
    with pytest.raises(TypeError, match="floating"):
        eigen_cam(torch.ones(1, 8, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"a torch.Tensor of shape \(B, C, H, W\). Got ndarray \(torch.from_numpy"):
        eigen_cam(a.numpy())  # a trial: AttributeError 'numpy.ndarray' object has no attribute 'is_floating_point'
    with pytest.raises(ValueError, match="non-empty"):
        eigen_cam(torch.randn(0, 8, 4, 4))


# -- the widely used implementation --------------------------------------------------------------
@pytest.mark.parametrize("name", list(ARCHS))
def test_maps_equal_pytorch_grad_cam(nets, frames, name):
    """Same model, layer and input as pytorch_grad_cam.EigenCAM; its sign is LAPACK's, so compare
    with whichever of our two signs it picked (eigen_cam(-acts) is the other one)."""
    eigen_cam_ref = pytest.importorskip("pytorch_grad_cam").EigenCAM
    from eigencam_live.models import find_layer

    loaded = nets[name]
    layer = loaded.spec.layer
    x = to_input(frames)
    with eigen_cam_ref(loaded.net, target_layers=[find_layer(loaded.net, layer)]) as ref:
        with one_blas_thread():
            theirs = ref(input_tensor=x, targets=None)  # (B, H_in, W_in), relu + min-max, resized with cv2
    with ActivationCapture(loaded.net, layer) as cap, torch.inference_mode():
        loaded.net(x)
    a = cap.map(tuple(x.shape[-2:]))
    ours, flipped = eigen_cam(a).maps.numpy(), eigen_cam(-a).maps.numpy()
    assert theirs.shape == (x.shape[0], x.shape[2], x.shape[3])
    for i in range(x.shape[0]):
        best = max(
            pearson(cv2.resize(m[i], (x.shape[3], x.shape[2])), theirs[i]) for m in (ours, flipped)
        )
        assert best >= 0.999, (name, i, best)


# -- the CPU Gram solver of the exact method against the general exact solver ---------------------
# Both end in the same tail, so these hold the solvers' outputs equal, and the tests above, that run on
# the Gram solver for every HW <= C case, would pass on the general solver alone without them.
FAST_CASES = [case for case in CASES if case[1] in ("layer4", "layer3", "features", "trunk_output")]  # HW <= C


def both_paths(monkeypatch, fn):
    """``fn()`` on the CPU Gram solver, then on the general exact solver."""
    fast = fn()
    with monkeypatch.context() as m:
        m.setattr(solvers, "gram_cpu", lambda *args: None)
        general = fn()
    return fast, general


def assert_same(fast, general):
    assert fast.method == general.method and fast.component == general.component
    for name in ("maps", "projections", "singular_values", "explained"):
        got, want = getattr(fast, name), getattr(general, name)
        assert got.shape == want.shape and got.dtype == want.dtype == torch.float32, name
        scale = max(float(want.abs().max()), 1e-30)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * scale, msg=name)


def test_the_gram_solver_runs_for_small_cpu_maps(acts, monkeypatch):
    """Without it the tests above would pass on the general path alone."""
    calls = []
    real = solvers.gram_cpu
    monkeypatch.setattr(solvers, "gram_cpu", lambda *args: calls.append(args[0].shape) or real(*args))
    monkeypatch.setattr(solvers, "centred_matrix", lambda *args: pytest.fail("the general path ran"))
    eigen_cam(acts[("resnet18", "layer4")])
    assert calls == [torch.Size([3, 512, 4, 5])]


@pytest.mark.parametrize("case", FAST_CASES, ids=["/".join(c) for c in FAST_CASES])
def test_gram_solver_equals_general_path(acts, case, monkeypatch):
    a = acts[case]
    for k in (1, 2, 3):
        assert_same(*both_paths(monkeypatch, lambda k=k: eigen_cam(a, k, "exact")))
    # channels-last and half-precision layouts of the same activations
    cl = a.contiguous(memory_format=torch.channels_last)
    assert_same(*both_paths(monkeypatch, lambda: eigen_cam(cl)))
    assert_same(eigen_cam(cl), eigen_cam(a))
    half = a.half()
    assert_same(*both_paths(monkeypatch, lambda: eigen_cam(half)))


def test_gram_solver_tracks_video_like_the_general_path(acts, monkeypatch):
    """Frame by frame and in batches, through a flipped basis and a blank frame: the same signs,
    maps and basis on both paths."""
    a = acts[("resnet18", "layer4")]
    blank = torch.zeros_like(a[:1])
    frames = torch.cat([a, -a[:1], blank, a[1:], blank])  # 8 frames

    def run():
        tracker = SubspaceTracker()
        out = [eigen_cam(frames[t : t + 1], tracker=tracker) for t in range(4)]
        out.append(eigen_cam(frames[4:7], tracker=tracker))  # a batch that starts with a blank frame
        before = tracker.basis.clone()
        out.append(eigen_cam(frames[7:], tracker=tracker))  # a blank frame keeps the basis
        assert torch.equal(tracker.basis, before)
        tracker.update(-tracker.basis[None])  # an update from outside between calls
        out.append(eigen_cam(a[2:3], tracker=tracker))  # the frame the basis came from
        out.append(eigen_cam(frames[:3], tracker=tracker))
        return out, tracker.basis

    (fast, fast_basis), (general, general_basis) = both_paths(monkeypatch, run)
    for f, g in zip(fast, general, strict=True):
        assert_same(f, g)
    torch.testing.assert_close(fast_basis, general_basis, rtol=0, atol=1e-5)
    for blank_map in (fast[4].maps[0], fast[5].maps[0]):
        assert float(blank_map.abs().max()) == 0.0
    # the flipped basis left the next map as the rule has it: its map and the channel sum correlate
    # firmly (on a weak frame the tracker decides: test_tracker_keeps_the_sign_of_the_previous_frame)
    assert float(firmness(a[2:3])[0]) > FIRM
    torch.testing.assert_close(fast[6].projections, eigen_cam(a[2:3]).projections, rtol=1e-4, atol=1e-5)


def test_gram_solver_edge_cases_match_the_general_path(monkeypatch):
    g = torch.Generator().manual_seed(5)
    # rank-deficient maps: HW = 5 positions (rank <= 4 after centring) and rank-2 activations, where
    # the weak components are rounding noise on both paths and reported as absent
    few = torch.rand(2, 16, 1, 5, generator=g)
    rank2 = (torch.rand(1, 64, 2, generator=g) @ torch.rand(1, 2, 36, generator=g)).view(1, 64, 6, 6)
    for a in (few, rank2):
        for k in (1, 3):
            fast, general = both_paths(monkeypatch, lambda a=a, k=k: eigen_cam(a, k, "exact"))
            assert_same(fast, general)
    noise = eigen_cam(rank2, 4, "exact")
    assert float(noise.maps.abs().max()) == 0.0 and float(noise.singular_values[0, 2:].abs().max()) == 0.0
    # batches come back contiguous, like the general path's
    res = eigen_cam(torch.rand(3, 64, 4, 4, generator=g), tracker=SubspaceTracker())
    assert all(t.is_contiguous() for t in (res.maps, res.projections, res.singular_values, res.explained))


def test_under_a_float64_default_dtype():
    g = torch.Generator().manual_seed(6)
    a = torch.rand(2, 64, 4, 4, generator=g)
    wide = torch.rand(1, 8, 5, 6, generator=g)  # HW > C: the general path
    want = [eigen_cam(a), eigen_cam(wide, tracker=SubspaceTracker()), eigen_cam(a, method="randomized")]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tracker = SubspaceTracker()
        got = [eigen_cam(a, tracker=tracker), eigen_cam(wide, tracker=SubspaceTracker()), eigen_cam(a, method="randomized")]
        eigen_cam(a, tracker=tracker)
        assert tracker.basis.dtype == torch.float32
    finally:
        torch.set_default_dtype(old)
    for g_, w_ in zip(got, want, strict=True):
        assert_same(g_, w_)


def test_editing_the_tracker_basis_in_place_is_followed():
    a = undecided()
    tracker = SubspaceTracker()
    plain = eigen_cam(a, tracker=tracker)
    tracker.basis.neg_()
    torch.testing.assert_close(eigen_cam(a, tracker=tracker).projections, -plain.projections, rtol=1e-4, atol=1e-5)


# -- video state ---------------------------------------------------------------------------------
def test_tracker_keeps_the_sign_of_the_previous_frame_where_the_rule_is_not_firm(acts):
    a = undecided()
    assert float(firmness(a)[0]) < FIRM
    plain = eigen_cam(a)
    tracker = SubspaceTracker()
    eigen_cam(a, tracker=tracker)
    # Pretend the previous frame had the opposite sign: the map follows it instead of the rule.
    tracker.update(-tracker.basis[None])
    flipped = eigen_cam(a, tracker=tracker)
    torch.testing.assert_close(flipped.projections, -plain.projections, rtol=1e-4, atol=1e-5)
    tracker.reset()
    assert tracker.basis is None
    torch.testing.assert_close(eigen_cam(a, tracker=tracker).projections, plain.projections)
    # A frame the rule decides firmly keeps the rule's sign, whatever the previous frame's (a trial:
    # a tracker that decided every sign held a fifth of a real video inverted after one weak frame).
    real = acts[("resnet18", "layer4")][:1]
    assert float(firmness(real)[0]) > FIRM
    tracker = SubspaceTracker()
    plain = eigen_cam(real, tracker=tracker)
    tracker.update(-tracker.basis[None])
    torch.testing.assert_close(eigen_cam(real, tracker=tracker).projections, plain.projections)
    assert float((tracker.basis[:, 0] * first_basis(real)[:, 0]).sum()) > 0  # and the basis it keeps


@pytest.mark.parametrize("how", [{"method": "randomized"}, {"sync_free": True}, {"batch": True}],
                         ids=["randomized", "sync-free", "batch"])
def test_every_solver_path_takes_the_firm_rule_the_same_way(acts, how):
    """The firm rule on the torch solvers' tail (a review: only the CPU Gram solver was tested) and
    within a batch: a weak frame follows the previous one, a firm frame keeps the rule's sign."""
    kw = {k: v for k, v in how.items() if k != "batch"}
    weak, firm = undecided(), acts[("resnet18", "layer4")][:1]

    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(np.corrcoef(a.ravel().numpy(), b.ravel().numpy())[0, 1])

    for a, follows in ((weak, True), (firm, False)):
        plain = eigen_cam(a, **kw).projections
        tracker = SubspaceTracker()
        eigen_cam(a, tracker=tracker, **kw)
        tracker.update(-tracker.basis[None])  # the previous frame had the other sign
        if how.get("batch"):  # the frame twice in one batch: the second follows the first
            got = eigen_cam(torch.cat([a, a]), tracker=tracker, **kw).projections
            assert corr(got[0], got[1]) > 0.999
            got = got[:1]
        else:
            got = eigen_cam(a, tracker=tracker, **kw).projections
        assert corr(got, plain) == pytest.approx(-1.0 if follows else 1.0, abs=1e-3)


def test_warm_started_video_stays_exact(nets):
    """Consecutive frames of a moving object: the warm-started randomized method (one power
    iteration) tracks the exact map, and the sign never flips."""
    loaded = nets["resnet18"]
    video = [np.roll(scene(128, 160, corner="c", seed=3), shift=4 * t, axis=1) for t in range(6)]
    with ActivationCapture(loaded.net, "layer2") as cap, torch.inference_mode():
        loaded.net(to_input(video))
    a = cap.map((128, 160))  # (6, 128, 16, 20): HW 320 > C 128
    tracker = SubspaceTracker()
    for t in range(a.shape[0]):
        warm = eigen_cam(a[t : t + 1], method="randomized", tracker=tracker)
        exact = eigen_cam(a[t : t + 1], method="exact")
        assert pearson(warm.maps, exact.maps) >= 0.999, t


def test_temporal_smoother():
    g = torch.Generator().manual_seed(0)
    p1, p2 = torch.randn(1, 4, 5, generator=g), torch.randn(1, 4, 5, generator=g)
    torch.testing.assert_close(TemporalSmoother(0.0)(p1), normalize_maps(torch.relu(p1)))
    sm = TemporalSmoother(0.5)
    first = sm(p1)
    torch.testing.assert_close(first, torch.relu(p1) / torch.relu(p1).max())
    second = sm(p2)
    blend = 0.5 * torch.relu(p1) + 0.5 * torch.relu(p2)
    hi = max(0.5 * float(torch.relu(p1).max()) + 0.5 * float(torch.relu(p2).max()), float(blend.max()))
    torch.testing.assert_close(second, blend / hi)
    assert 0.0 <= float(second.min()) and float(second.max()) <= 1.0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="smoothing"):
            TemporalSmoother(bad)


def test_normalize_maps():
    m = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[4.0, 4.0], [4.0, 4.0]]])
    out = normalize_maps(m)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert float(out[1].abs().max()) == 0.0  # flat -> 0, not NaN


def test_sync_free_path_matches_exact(acts):
    """The GPU path's decomposition (no host syncs) runs on the CPU too and gives the same maps."""
    a = acts[("resnet18", "layer4")]
    want, _, _ = reference(a)
    res = eigen_cam(a, sync_free=True, tracker=SubspaceTracker())
    assert res.method == "sync-free"
    for i in range(a.shape[0]):
        assert pearson(res.maps[i], want[i]) >= 0.999
    torch.testing.assert_close(res.explained[:, 0], eigen_cam(a).explained[:, 0], rtol=1e-3, atol=1e-5)
