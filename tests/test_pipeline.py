"""The device-resident path (GPU fast path) gives the same pictures and numbers as the numpy path.

On a machine without a GPU it runs on the CPU; the CUDA-only checks (no host sync in the loop,
fp16) are marked ``cuda`` and skipped there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eigencam_live.cam import eigen_cam
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.linalg import cholesky_qr, jacobi_eigh, topk_eigh_sync_free
from eigencam_live.pipeline import DevicePipeline
from eigencam_live.render import RenderConfig, render

from .conftest import scene

CUDA = torch.cuda.is_available()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_jacobi_matches_eigh_on_clustered_spectrum():
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(3, 11, 11, generator=g))
    evals = torch.tensor([5.0, 4.9, 4.85, 1.0, 0.99, 0.5, 0.1, 0.01, 0.0, 0.0, 0.0])
    a = q @ torch.diag_embed(evals.expand(3, -1)) @ q.transpose(1, 2)
    vals, vecs = jacobi_eigh(a)
    assert torch.allclose(vals, evals.expand(3, -1), atol=2e-5)
    recon = vecs @ torch.diag_embed(vals) @ vecs.transpose(1, 2)
    assert float((recon - a).abs().max()) < 2e-5
    assert float((vecs.transpose(1, 2) @ vecs - torch.eye(11)).abs().max()) < 2e-5


def test_cholesky_qr_orthonormal_and_zero_safe():
    g = torch.Generator().manual_seed(2)
    # Ill-conditioned columns (what power iteration produces) still come out orthonormal.
    y = torch.randn(2, 500, 8, generator=g) @ torch.diag(torch.logspace(0, -4, 8))
    q = cholesky_qr(y)
    assert float((q.transpose(1, 2) @ q - torch.eye(8)).abs().max()) < 1e-3
    assert torch.count_nonzero(cholesky_qr(torch.zeros(1, 49, 7))) == 0


@pytest.mark.parametrize("shape", [(2, 49, 960), (1, 600, 256)])
def test_sync_free_components_match_svd(shape):
    g = torch.Generator().manual_seed(3)
    b, n, c = shape
    low = (torch.randn(b, n, 5, generator=g) * torch.tensor([4.0, 3.7, 3.0, 2.0, 1.5])) @ torch.randn(b, 5, c, generator=g)
    x = low + 0.3 * torch.randn(b, n, c, generator=g)
    x = x - x.mean(dim=1, keepdim=True)
    scores, _, s = topk_eigh_sync_free(x, 5)
    u, s_ref, _ = torch.linalg.svd(x, full_matrices=False)
    for k in range(5):
        for i in range(b):
            assert abs(_corr(scores[i, :, k].numpy(), u[i, :, k].numpy())) > 0.9999
    assert torch.allclose(s, s_ref[:, :5], rtol=1e-4)


def test_sync_free_eigen_cam_equals_exact():
    g = torch.Generator().manual_seed(4)
    acts = torch.randn(3, 64, 9, 13, generator=g)
    acts[:, :16, 2:5, 3:7] += 3.0  # a structured object
    exact = eigen_cam(acts, method="exact")
    free = eigen_cam(acts, sync_free=True)
    assert free.method == "sync-free"
    for i in range(3):
        assert _corr(free.maps[i].numpy(), exact.maps[i].numpy()) > 0.999
    # The leading component's share is exact; the noise floor's is estimated from below.
    assert torch.allclose(free.explained[:, 0], exact.explained[:, 0], rtol=2e-3)
    assert bool((free.explained[:, 1:] <= exact.explained[:, 1:] + 1e-4).all())


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="resnet18", weights="none", short_side=96, device="cpu"))


@pytest.mark.parametrize("view", ["overlay", "side-by-side", "heatmap"])
def test_device_pipeline_matches_numpy_path(engine, view):
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    rc = RenderConfig(view=view, alpha=0.6, colormap="turbo")
    engine.reset()
    ref = engine.process(frames)
    engine.reset()
    out, stats = DevicePipeline(engine, rc, keep_cams=True).run(frames)
    width = 400 if view == "side-by-side" else 200
    assert out.shape == (2, 120, width, 3) and out.dtype == np.uint8
    for i in range(2):
        assert _corr(stats[i].cam.astype(np.float32), ref[i].cam) > 0.99
        expected = render(frames[i], ref[i].heatmap, view, 0.6, "turbo")
        # Inputs are resized by different (equally valid) filters on the two paths.
        assert np.abs(out[i].astype(int) - expected.astype(int)).mean() < 6.0
        assert [lbl for lbl, _ in stats[i].predictions] == [lbl for lbl, _ in ref[i].predictions]
        np.testing.assert_allclose([p for _, p in stats[i].predictions], [p for _, p in ref[i].predictions], rtol=0.05)
        np.testing.assert_allclose(stats[i].explained, ref[i].explained, atol=0.01)
        px, py = stats[i].peak
        assert 0 <= px < 200 and 0 <= py < 120
        assert stats[i].cam.dtype == np.float16


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_loop_never_syncs_the_host():
    eng = Engine(EngineConfig(model="resnet18", weights="none", device="cuda"))
    pipe = DevicePipeline(eng, RenderConfig())
    frames = np.stack([scene(1080, 1920, seed=i) for i in range(2)])
    pipe.run(frames)  # warm-up: cudnn autotuning, colormap table upload
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        pending = [pipe.submit(frames) for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    out, stats = pending[-1].result()
    assert out.shape == (2, 1080, 1920, 3) and len(stats) == 2
    assert eng.dtype == torch.float16


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_fp16_maps_match_cpu_fp32():
    frames = np.stack([scene(224, 224, corner="tr", seed=5)])
    cpu = Engine(EngineConfig(model="resnet18", weights="none", device="cpu", short_side=224))
    gpu = Engine(EngineConfig(model="resnet18", weights="none", device="cuda", short_side=224), model=None)
    gpu.loaded.net.load_state_dict({k: v.to(torch.float16) for k, v in cpu.loaded.net.state_dict().items()})
    ref = cpu.process(frames)[0]
    _, stats = DevicePipeline(gpu, keep_cams=True).run(frames)
    assert _corr(stats[0].cam.astype(np.float32), ref.cam) > 0.99


def test_annotate_through_the_device_path(tmp_path, engine):
    """annotate's GPU route (DevicePipeline in the inference thread), exercised on the CPU: same
    frames, rate, stats and heatmaps as the numpy route."""
    import csv

    from eigencam_live.annotate import Job, annotate_file

    from .media import NTSC, probe, write_clip

    src = write_clip(tmp_path / "in.mp4", frames=12, size=(96, 64), rate=NTSC, audio=True)
    jobs = {}
    for name, device_path in (("cpu", False), ("device", True)):
        job = Job(src, tmp_path / f"{name}.mp4", tmp_path / f"{name}.csv", tmp_path / f"{name}.npz")
        result = annotate_file(engine, job, batch_size=4, progress=False, device_path=device_path)
        assert (result.frames, result.audio) == (12, True)
        jobs[name] = job
    got = probe(jobs["device"].output)
    assert (got["width"], got["height"], got["frames"], got["rate"]) == (96, 64, 12, NTSC)
    rows = {k: list(csv.DictReader(j.stats.open())) for k, j in jobs.items()}
    assert [r["label"] for r in rows["device"]] == [r["label"] for r in rows["cpu"]]
    maps = {k: np.load(j.heatmaps)["maps"].astype(np.float32) for k, j in jobs.items()}
    assert maps["device"].shape == maps["cpu"].shape == (12, *maps["cpu"].shape[1:])
    assert min(_corr(a, b) for a, b in zip(maps["device"], maps["cpu"], strict=True)) > 0.98
