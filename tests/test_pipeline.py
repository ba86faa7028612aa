"""The resident route (the GPU's: frames stay on the device, sync-free solver, pictures drawn
there, one download) gives the same pictures and numbers as the host route.

On a machine without a GPU it is forced on the CPU (``Engine(resident=True)``); the CUDA-only checks
(no host sync in the loop, fp16) are marked ``cuda`` and skipped there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eigencam_live.cam import eigen_cam
from eigencam_live.cam.linalg import cholesky_qr, jacobi_eigh
from eigencam_live.cam.solvers import sync_free
from eigencam_live.engine import Engine, EngineConfig
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
    found = sync_free(x.mT, 5)
    s = found.s
    u, s_ref, vh = torch.linalg.svd(x, full_matrices=False)
    for k in range(5):
        for i in range(b):
            assert abs(_corr(found.u[i, :, k].numpy(), u[i, :, k].numpy())) > 0.9999
            assert abs(_corr(found.v[i, :, k].numpy(), vh[i, k].numpy())) > 0.9999
    # the same (u, s, v) as every solver: X v_k = s_k u_k
    torch.testing.assert_close(x @ found.v, found.u * s[:, None, :], rtol=0, atol=1e-3 * float(s.max()))
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


@pytest.fixture(scope="module")
def resident(engine):
    return Engine(engine.config, model=engine.loaded, resident=True)


def test_the_route_follows_the_device():
    assert Engine(EngineConfig(model="resnet18", weights="none", short_side=64, device="cpu")).resident is False
    # CUDA engines take the resident route unless told otherwise (test_cuda_* run it on a GPU)


def test_the_resident_route_draws_on_the_device_with_the_sync_free_solver(resident, monkeypatch):
    import eigencam_live.engine as engine_module
    import eigencam_live.results as results_module

    calls = []
    real_cam, real_finish = engine_module.eigen_cam, engine_module.finish_pictures
    monkeypatch.setattr(engine_module, "eigen_cam", lambda *a, **k: calls.append(("cam", k["sync_free"])) or real_cam(*a, **k))
    def spy_finish(*a):
        calls.append(("draw", a[0].device.type))
        return real_finish(*a)

    monkeypatch.setattr(engine_module, "finish_pictures", spy_finish)  # drawn in submit()
    monkeypatch.setattr(results_module, "finish_pictures", spy_finish)  # drawn in result()
    pending = resident.submit(scene(120, 200), RenderConfig())
    assert calls == [("cam", True), ("draw", "cpu")]  # drawn in submit(), before the one download
    assert pending.result()[0].picture.shape == (120, 200, 3)
    assert len(calls) == 2  # nothing left to draw on the host


@pytest.mark.parametrize("view", ["overlay", "side-by-side", "heatmap"])
def test_resident_route_matches_the_host_route(engine, resident, view):
    frames = np.stack([scene(120, 200, corner=c, seed=i) for i, c in enumerate(["tl", "br"])])
    rc = RenderConfig(view=view, alpha=0.6, colormap="turbo")
    engine.reset()
    resident.reset()
    ref = engine.process(frames, rc)
    got = resident.process(frames, rc)
    width = 400 if view == "side-by-side" else 200
    for i in range(2):
        assert got[i].picture.shape == (120, width, 3) and got[i].picture.dtype == np.uint8
        assert _corr(got[i].cam, ref[i].cam) > 0.999
        expected = render(frames[i], ref[i].heatmap, view, 0.6, "turbo")
        np.testing.assert_array_equal(ref[i].picture, expected)  # the host route draws with render()
        assert np.abs(got[i].picture.astype(int) - expected.astype(int)).mean() < 1.0
        assert [lbl for lbl, _ in got[i].predictions] == [lbl for lbl, _ in ref[i].predictions]
        np.testing.assert_allclose([p for _, p in got[i].predictions], [p for _, p in ref[i].predictions], rtol=1e-4)
        np.testing.assert_allclose(got[i].explained, ref[i].explained, atol=1e-3)
        assert got[i].peak == ref[i].peak
        np.testing.assert_allclose(got[i].heatmap, ref[i].heatmap, atol=2e-3)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_loop_never_syncs_the_host():
    eng = Engine(EngineConfig(model="resnet18", weights="none", device="cuda"))
    assert eng.resident and eng.dtype == torch.float16
    frames = np.stack([scene(1080, 1920, seed=i) for i in range(2)])
    eng.process(frames, RenderConfig())  # warm-up: cudnn autotuning, colormap table upload
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        pending = [eng.submit(frames, RenderConfig()) for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    results = pending[-1].result()
    assert results[0].picture.shape == (1080, 1920, 3) and len(results) == 2


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_fp16_maps_match_cpu_fp32():
    frames = np.stack([scene(224, 224, corner="tr", seed=5)])
    cpu = Engine(EngineConfig(model="resnet18", weights="none", device="cpu", short_side=224))
    gpu = Engine(EngineConfig(model="resnet18", weights="none", device="cuda", short_side=224))
    gpu.loaded.net.load_state_dict({k: v.to(torch.float16) for k, v in cpu.loaded.net.state_dict().items()})
    ref = cpu.process(frames)[0]
    got = gpu.process(frames, RenderConfig())[0]
    assert _corr(got.cam, ref.cam) > 0.99


def test_annotate_through_the_resident_route(tmp_path, engine, resident):
    """annotate's GPU route (pictures drawn in the inference thread, the encoder waiting for
    them), exercised on the CPU: same frames, rate, stats and heatmaps as the host route."""
    import csv

    from eigencam_live.annotate import Job, annotate_file

    from .media import NTSC, probe, write_clip

    src = write_clip(tmp_path / "in.mp4", frames=12, size=(96, 64), rate=NTSC, audio=True)
    jobs = {}
    for name, eng in (("cpu", engine), ("device", resident)):
        job = Job(src, tmp_path / f"{name}.mp4", tmp_path / f"{name}.csv", tmp_path / f"{name}.npz")
        result = annotate_file(eng, job, batch_size=4, progress=False)
        assert (result.frames, result.audio) == (12, True)
        jobs[name] = job
    got = probe(jobs["device"].output)
    assert (got["width"], got["height"], got["frames"], got["rate"]) == (96, 64, 12, NTSC)
    rows = {k: list(csv.DictReader(j.stats.open())) for k, j in jobs.items()}
    assert [r["label"] for r in rows["device"]] == [r["label"] for r in rows["cpu"]]
    maps = {k: np.load(j.heatmaps)["maps"].astype(np.float32) for k, j in jobs.items()}
    assert maps["device"].shape == maps["cpu"].shape == (12, *maps["cpu"].shape[1:])
    assert min(_corr(a, b) for a, b in zip(maps["device"], maps["cpu"], strict=True)) > 0.999


def test_the_queues_between_the_stages_hold_a_bounded_number_of_bytes():
    """A trial: a 4K clip peaked at 4.3 GB (each frame held twice, nine batches of four in the
    queues); the queues now hold at most 128 and 256 MB of frames, and at least one batch."""
    from eigencam_live.annotate.pipeline import _Pipeline

    def depths(width: int, height: int, batch: int) -> tuple[int, int]:
        pipe = _Pipeline(None, None, None, None, batch, None, frame_size=(width, height))
        return pipe.prepared.maxsize, pipe.results.maxsize

    assert depths(640, 360, 4) == depths(1920, 1080, 4) == (2, 4)  # as before: the network never waits
    assert depths(3840, 2160, 4) == (1, 2) and depths(7680, 4320, 4) == (1, 1)
    from eigencam_live.annotate.pipeline import decoded_depth

    # the decoded frames waiting for the network: 8, as before, up to 80 MB of them
    assert decoded_depth(1920, 1080) == 8 and decoded_depth(3840, 2160) == 3 and decoded_depth(7680, 4320) == 2


def test_annotate_holds_each_picture_once_in_each_stage():
    """A re-trial: 4K still peaked at 3.3 GB. The network's batch was stacked from a list of the
    frames (both held while it was made), and the encoder held the last batch's pictures and maps
    (a frame's result is a view of them) while the next batch was drawn: 230 MB at 4K. A batch is
    now drawn one frame at a time, as the encoder takes them.
    Here every frame and picture is watched by a weak reference."""
    import threading
    import weakref
    from types import SimpleNamespace

    from eigencam_live.annotate.pipeline import _Pipeline
    from eigencam_live.video import Frame

    frames, pictures, seen = [], [], {"prepare": [], "draw": []}

    class Capture:
        def __init__(self) -> None:
            self.left = 10

        def start(self) -> None:
            pass

        def read(self, timeout: float):
            if not self.left:
                return None
            self.left -= 1
            image = np.full((8, 12, 3), self.left, np.uint8)
            frames.append(weakref.ref(image))
            return Frame(image=image, index=9 - self.left, pts=(9 - self.left) / 25, captured=0.0, duration=0.04)

    class Pending:
        def __init__(self, batch: np.ndarray) -> None:
            self.batch = batch

        def each(self):
            for f in self.batch:
                seen["draw"].append(sum(p() is not None for p in pictures))  # those drawn before, still held
                yield SimpleNamespace(picture=drawn(f), in_boxes=False, detections=None)

    def drawn(frame: np.ndarray) -> np.ndarray:
        picture = frame.copy()
        pictures.append(weakref.ref(picture))
        return picture

    engine = SimpleNamespace(
        prepare=lambda batch: seen["prepare"].append(sum(f() is not None for f in frames)) or batch.copy(),
        submit=lambda ahead, look: Pending(ahead))
    written = []
    sink = SimpleNamespace(write=lambda picture, pts, duration: written.append((picture.sum(), pts)))
    tables = SimpleNamespace(add=lambda pts, r, index: None)
    pipe = _Pipeline(engine, Capture(), sink, None, 4, tables, None, 0.0, (12, 8))
    pipe.start()
    pipe.join_until_done()
    assert pipe.error is None and pipe.written == 10 and threading.active_count() >= 1
    assert [pts for _, pts in written] == [i / 25 for i in range(10)]  # every frame, in order
    assert [int(s) for s, _ in written] == [(9 - i) * 8 * 12 * 3 for i in range(10)]  # its own picture
    assert seen["prepare"] == [0, 0, 0]  # each frame copied into its batch and let go
    # one picture at a time: the frame before is written while the next is drawn, and a batch's
    # last is let go before the next batch (a batch drawn whole held 4 pictures and 4 maps, 8 at -b 8)
    assert seen["draw"] == [0, 1, 1, 1, 0, 1, 1, 1, 0, 1]
