"""What the engine costs on top of the network's forward pass. Prints a table and one JSON line.

    python benchmarks/bench_engine.py [--repeats 20] [--warmup 5] [--models resnet50 mobilenet_v3_large]

Measured in one process, on one input, random weights (no download):

* ``cam``: the Eigen-CAM step alone (``eigen_cam`` on the captured activations, as the engine calls
  it, video tracker included) against the forward pass, 224 x 224, batch 1. Target <= 5 %.
* ``frame``: a whole 768 x 432 BGR frame through :meth:`Engine.process_one` with a render (preprocess +
  forward + map + finish: the map on the frame and the overlay drawn), against the forward at the engine's input size for
  that frame (224 x 384: whole frame, aspect kept, multiples of 32). Target <= 1.25x.
* ``grad-cam``: ``pytorch_grad_cam.EigenCAM`` (the widely used implementation: forward + map +
  resize to the input) against the engine on a 224 x 224 frame (which adds preprocessing the other
  does not do). Targets: >= 4x faster per frame, and >= 50x less time outside the forward.

Each model is measured in a fresh process (``--in-process`` runs them all in this one: the second
model's small ops then run 10 to 20 % slower). Each repetition times every variant of a case back to
back (interleaved), so load from other processes hits them alike; each step is timed right after a
forward pass, as the engine runs it; the figures are medians over the repetitions. Ratios are medians of each repetition's paired ratio (robust to load that
drifts between repetitions); an overhead that comes out <= 0.05 ms is reported as nan (noise). On CUDA the same cases run in fp16 with ``torch.cuda.synchronize()`` before every
clock read (grad-cam there runs an fp32 copy: its numpy SVD has no fp16).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import lapack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eigencam_live.cam import SubspaceTracker, eigen_cam  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig, input_size  # noqa: E402
from eigencam_live.models import ActivationCapture, find_layer, load_model  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402

TARGETS = {"cam_over_forward": 0.05, "frame_over_forward": 1.25, "gradcam_speedup": 4.0, "gradcam_overhead_ratio": 50.0}


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A structured BGR frame (smooth background, one textured object), like the tests' scenes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = 60 + 20 * np.sin(xx / 23.0) + 20 * np.cos(yy / 31.0)
    img = np.stack([bg, bg * 0.9, bg * 0.8], axis=-1) + rng.normal(0, 3, (height, width, 3))
    s = min(height, width) // 3
    y0, x0 = height // 5, width // 2
    checker = ((np.arange(s)[:, None] // 6 + np.arange(s)[None, :] // 6) % 2).astype(np.float32)
    img[y0 : y0 + s, x0 : x0 + s] = np.stack([230 * checker + 20, 40 + 120 * (1 - checker), 200 * checker], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


class Timings:
    """Per-repetition milliseconds of interleaved variants: medians, and medians of paired
    quantities (each repetition's ratio or difference), which cancel load that drifts between
    repetitions better than ratios of medians do."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        self.samples = samples

    def __getitem__(self, key: str) -> float:
        return statistics.median(self.samples[key])

    def ratio(self, a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(self.samples[a], self.samples[b], strict=True))

    def diff(self, a: str, b: str) -> float:
        return statistics.median(x - y for x, y in zip(self.samples[a], self.samples[b], strict=True))


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int, sync: Callable[[], None],
                settle: float = 0.0, before: dict[str, Callable[[], object]] | None = None) -> Timings:
    """Milliseconds of each function per repetition; every repetition runs all of them back to back,
    ``settle`` seconds apart. ``before[key]``, when given, runs untimed just before ``fns[key]`` (a
    forward pass, so that a step is timed in the state the engine runs it in: right after one)."""
    before = before or {}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            if key in before:
                before[key]()
            sync()
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            fn()
            sync()
            samples[key].append((time.perf_counter() - t0) * 1000.0)
    return Timings(samples)


def bench_model(name: str, device: torch.device, precision: str, repeats: int, warmup: int, gradcam: bool,
                sync: Callable[[], None], rows: list[dict], ratios: dict[str, float]) -> None:
    torch.manual_seed(0)
    loaded = load_model(name, "none")
    reference = copy.deepcopy(loaded) if gradcam and name == "resnet50" else None
    # torch's forward is the reference here (bench_backends.py compares ONNX Runtime with it)
    cfg = EngineConfig(model=name, weights="none", short_side=224, device=device.type, precision=precision,
                       backend="torch")
    engine = Engine(cfg, model=loaded)
    net, layer = engine.loaded.net, engine.layer

    # -- the map alone vs the forward, 224 x 224 ------------------------------------------------
    square = scene(224, 224)
    x = engine.preprocess(square[None])
    with torch.inference_mode(), ActivationCapture(net, layer) as cap:
        net(x)
        fmap = cap.map(tuple(x.shape[-2:]))
    tracker = SubspaceTracker()
    positions = fmap.shape[2] * fmap.shape[3]
    centred = fmap.flatten(2).mT.float()
    centred = centred - centred.mean(dim=1, keepdim=True)
    gram = (centred @ centred.mT)[0].float().cpu().numpy()  # the exact method's matrix when HW <= C
    wanted = min(5, positions)

    def forward():
        with torch.inference_mode():
            net(x)

    def cam():
        with torch.inference_mode():
            eigen_cam(fmap, 1, "auto", tracker=tracker)

    def cam_single():
        with torch.inference_mode():
            eigen_cam(fmap, 1, "auto")

    def eigh():  # as solvers.gram_cpu asks LAPACK: the leading eigenpairs only
        lapack.ssyevr(gram, compute_v=1, range="I", lower=0, il=positions - wanted + 1, iu=positions)

    fns = {"forward": forward, "cam": cam, "cam-single": cam_single}
    if positions <= fmap.shape[1]:
        fns["eigh"] = eigh
    traced = engine.backend._traced_for(x)  # the CPU engine's traced copy, when this family has one
    if traced is not None:
        def forward_traced():
            with torch.inference_mode():
                traced(x)

        fns["forward-traced"] = forward_traced
    # Every step is timed right after a forward pass, as the engine runs it: the forward evicts the
    # caches, and a step timed in a loop of its own would look up to twice as fast.
    t = interleaved(fns, repeats, warmup, sync, before={"cam-single": forward, "eigh": forward})
    if reference is not None:
        from pytorch_grad_cam import EigenCAM

        ref_net = reference.net.to(device=device, dtype=torch.float32)
        grad_cam = EigenCAM(ref_net, target_layers=[find_layer(ref_net, layer)])
        x32 = x.float()
        fns = {"forward": forward, "engine": lambda: engine.process_one(square),
               "grad-cam": lambda: grad_cam(input_tensor=x32, targets=None)}
        if traced is not None:
            fns["forward-traced"] = forward_traced
        # OpenBLAS's workers spin for ~0.1 s after numpy's SVD in grad-cam: let them go idle, or
        # they steal the cores from whatever is timed next.
        g = interleaved(fns, repeats, warmup, sync, settle=0.15)
        grad_cam.activations_and_grads.release()
    shape = tuple(fmap.shape[1:])
    rows.append({"case": f"{name} @224 forward", "ms": t["forward"]})
    if traced is not None:
        rows.append({"case": f"{name} @224 forward, the engine's traced copy", "ms": t["forward-traced"],
                     "ratio": t.ratio("forward-traced", "forward")})
    rows.append({"case": f"{name} @224 eigen_cam {shape}", "ms": t["cam"], "ratio": t.ratio("cam", "forward"),
                 "target": f"<= {TARGETS['cam_over_forward']:.0%} of forward"})
    rows.append({"case": f"{name} @224 the same, one image (no video tracker)", "ms": t["cam-single"],
                 "ratio": t.ratio("cam-single", "forward")})
    if "eigh" in fns:
        rows.append({"case": f"{name} @224 of which the leading eigenpairs (LAPACK syevr), {positions}x{positions}", "ms": t["eigh"],
                     "ratio": t.ratio("eigh", "forward")})
    ratios[f"{name}_cam_over_forward"] = t.ratio("cam", "forward")
    if reference is not None:
        # Each side's time outside its own forward: the engine runs its traced copy when it has one.
        ours_over = g.diff("engine", "forward-traced" if traced is not None else "forward")
        theirs_over = g.diff("grad-cam", "forward")
        # a negative or ~0 overhead is noise (load changed between the two runs): no ratio then
        over_ratio = theirs_over / ours_over if ours_over > 0.05 else float("nan")
        rows.append({"case": f"{name} @224 forward (timed beside grad-cam)", "ms": g["forward"]})
        rows.append({"case": f"{name} @224 engine.process_one", "ms": g["engine"], "ratio": g.ratio("engine", "forward")})
        rows.append({"case": f"{name} @224 pytorch_grad_cam.EigenCAM", "ms": g["grad-cam"],
                     "ratio": g.ratio("grad-cam", "forward")})
        rows.append({"case": f"{name} @224 speed-up over grad-cam", "ratio": g.ratio("grad-cam", "engine"),
                     "target": f">= {TARGETS['gradcam_speedup']:.0f}x"})
        rows.append({"case": f"{name} @224 non-forward ms: ours {ours_over:.2f}, grad-cam {theirs_over:.1f}",
                     "ratio": over_ratio,
                     "target": f">= {TARGETS['gradcam_overhead_ratio']:.0f}x smaller"})
        ratios[f"{name}_gradcam_speedup"] = g.ratio("grad-cam", "engine")
        ratios[f"{name}_gradcam_overhead_ratio"] = over_ratio

    # -- a whole 768 x 432 frame vs the forward at the engine's input size ---------------------
    wide = scene(432, 768, seed=1)
    h, w = input_size(432, 768, cfg.short_side, engine.loaded.spec.fixed_input)
    xw = engine.preprocess(wide[None])
    assert tuple(xw.shape[2:]) == (h, w)

    def forward_wide():
        with torch.inference_mode():
            net(xw)

    look = RenderConfig()

    def whole_frame():
        engine.process_one(wide, look)

    engine.reset()
    t = interleaved({"forward": forward_wide, "frame": whole_frame}, repeats, warmup, sync)
    stages = engine.process_one(wide).timings
    rows.append({"case": f"{name} @{h}x{w} forward", "ms": t["forward"]})
    rows.append({"case": f"{name} 768x432 frame: process_one with render", "ms": t["frame"],
                 "ratio": t.ratio("frame", "forward"), "target": f"<= {TARGETS['frame_over_forward']}x forward"})
    rows.append({"case": "  stages of one frame (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())})
    ratios[f"{name}_frame_over_forward"] = t.ratio("frame", "forward")


def bench_device(device: torch.device, models: list[str], repeats: int, warmup: int, gradcam: bool) -> dict:
    cuda = device.type == "cuda"
    precision = "fp16" if cuda else "fp32"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows: list[dict] = []
    ratios: dict[str, float] = {}

    for name in models:
        bench_model(name, device, precision, repeats, warmup, gradcam, sync, rows, ratios)
    return {"device": str(device), "precision": precision, "rows": rows, "ratios": ratios}


def verdicts(ratios: dict[str, float]) -> dict[str, bool]:
    out = {}
    for key, value in ratios.items():
        for target, bound in TARGETS.items():
            if key.endswith(target):
                out[key] = value <= bound if target.endswith("over_forward") else value >= bound
    return out


def print_table(result: dict, ok: dict[str, bool]) -> None:
    print(f"\n== {result['device']} ({result['precision']}) ==")
    print(f"{'case':<66} {'median ms':>10} {'ratio':>8}  target")
    for row in result["rows"]:
        ms = f"{row['ms']:.2f}" if "ms" in row else ""
        ratio = f"{row['ratio']:.3f}" if "ratio" in row else ""
        target = row.get("target", "")
        if target:
            key = next((k for k in ok if row["case"].startswith(k.split("_")[0]) and _match(row, k)), None)
            target += "  " + ("PASS" if key and ok[key] else "FAIL")
        print(f"{row['case']:<66} {ms:>10} {ratio:>8}  {target}")


def _match(row: dict, key: str) -> bool:
    case = row["case"]
    if key.endswith("cam_over_forward"):
        return "eigen_cam" in case
    if key.endswith("frame_over_forward"):
        return "768x432 frame" in case
    if key.endswith("gradcam_speedup"):
        return "speed-up" in case
    return "non-forward" in case


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions per case (median; >= 10)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v3_large"])
    p.add_argument("--no-grad-cam", action="store_true", help="skip the pytorch_grad_cam comparison")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--in-process", action="store_true",
                   help="run all the models in this process (default: each in a fresh one, see below)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 10:
        p.error("--repeats must be >= 10")

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if args.child:  # one model for the parent: its results as one JSON line
        print(json.dumps([bench_device(d, args.models, args.repeats, args.warmup, not args.no_grad_cam) for d in devices]))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; medians of {args.repeats} interleaved runs "
          f"after {args.warmup} warm-up runs; random weights; "
          + ("all models in one process" if args.in_process else "each model in a fresh process"))
    if args.in_process or len(args.models) == 1:
        results = [bench_device(d, args.models, args.repeats, args.warmup, not args.no_grad_cam) for d in devices]
    else:
        # A model measured after another one in the same process runs its small ops 10 to 20 %
        # slower (the other network's and grad-cam's leftovers: allocator, oneDNN and MKL state), as
        # the app would after a model switch; a fresh process per model is how one model is used.
        results = _merge([_child(model, args) for model in args.models])
    all_ok = {}
    for r in results:
        ok = verdicts(r["ratios"])
        all_ok.update({f"{r['device']}:{k}": v for k, v in ok.items()})
        print_table(r, ok)
    if not torch.cuda.is_available():
        print("\nno GPU available (torch.cuda.is_available() is False): CUDA fp16 table skipped")
    summary = {
        "bench": "engine",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "results": [{"device": r["device"], "precision": r["precision"], "ratios": r["ratios"],
                     "ms": {row["case"]: row["ms"] for row in r["rows"] if "ms" in row}} for r in results],
        "targets": TARGETS,
        "pass": all_ok,
        "cuda": torch.cuda.is_available(),
    }
    print(json.dumps(summary))
    return 0


def _child(model: str, args: argparse.Namespace) -> list[dict]:
    cmd = [sys.executable, __file__, "--child", "--models", model, "--repeats", str(args.repeats),
           "--warmup", str(args.warmup)]
    if args.no_grad_cam:
        cmd.append("--no-grad-cam")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _merge(per_model: list[list[dict]]) -> list[dict]:
    """Per-model results (one dict per device each) -> one dict per device, rows in model order."""
    merged = []
    for parts in zip(*per_model, strict=True):
        merged.append({"device": parts[0]["device"], "precision": parts[0]["precision"],
                       "rows": [row for part in parts for row in part["rows"]],
                       "ratios": {k: v for part in parts for k, v in part["ratios"].items()}})
    return merged


if __name__ == "__main__":
    sys.exit(main())
