"""ONNX Runtime against torch on the CPU: the whole frame, the forward, the Eigen-CAM step, and the maps.

    python benchmarks/bench_backends.py [--repeats 20] [--warmup 5] [--models mobilenet_v3_large resnet50]

For each model (random weights, no download), one process, the same 768 x 432 frame at short side
224 (input 224 x 384), each repetition timing every variant back to back (interleaved, so load from
other processes hits them alike); figures are medians, ratios medians of each repetition's paired
ratio:

* ``frame``: ``Engine.process_one(frame, RenderConfig())`` (preprocess, forward, Eigen-CAM, map on
  the frame, top-5, overlay) with ``backend="onnxruntime"`` against ``backend="torch"`` (its
  traced copy where the family has one). Target: ONNX Runtime <= 0.6x torch.
* ``forward``: each backend's forward alone on the same input.
* ``cam``: the Eigen-CAM step on ONNX Runtime's activations, timed right after a forward (as the
  engine runs it), against ONNX Runtime's forward. Target <= 5 %.
* ``r``: Pearson r between the two backends' maps on real-looking frames (target >= 0.999).
* with ``--bf16``: the torch backend in bf16 too (channels-last traced copy; for CPUs with bf16
  kernels), its frame and forward against torch's fp32 and ONNX Runtime's.

With ``--alone R``: the whole frame and the forward of each backend in a process of its own (as
a user runs one), R rounds of one process per backend, in alternating order; the ratio is the
median of each round's. Interleaved in one process the two networks evict each other's weights
from the caches and, with 2+ threads, torch's OpenMP workers still spin while ONNX Runtime runs:
a setting no user has, which penalises whichever runs second. ``--unset`` leaves
``Engine.threads`` unset in those processes, as a library user has it (torch has ``--threads``).

Prints a table and one JSON line. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import scene  # noqa: E402

from eigencam_live.cam import SubspaceTracker, eigen_cam  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig  # noqa: E402
from eigencam_live.models import load_model  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402

TARGETS = {"frame_ort_over_torch": 0.6, "cam_over_forward": 0.05, "r": 0.999}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def bench_model(name: str, repeats: int, warmup: int, threads: int, bf16: bool = False) -> dict:
    torch.manual_seed(0)
    loaded = load_model(name, "none")
    look = RenderConfig()
    engines = {kind: Engine(EngineConfig(model=name, weights="none", backend=kind, device="cpu"), model=loaded)
               for kind in ("torch", "onnxruntime")}
    if bf16:  # its own copy of the network: the fp32 one stays as it is
        torch.manual_seed(0)
        engines["torch-bf16"] = Engine(EngineConfig(model=name, weights="none", backend="torch", precision="bf16",
                                                    device="cpu"),
                                       model=load_model(name, "none"))
    frame = scene(432, 768, seed=1)
    for e in engines.values():
        e.threads = threads  # as the front ends do: to ONNX Runtime's pool, or torch's
        e.process_one(frame, look)  # export / trace on the first frame
    x = engines["torch"].preprocess(frame[None])
    ort = engines["onnxruntime"]
    tracker = SubspaceTracker()

    def cam_after_forward() -> float:
        torch.set_num_threads(1)  # as the engine sets it where ONNX Runtime runs the network
        with torch.inference_mode():
            _, fmap, gram = ort.backend.forward_gram(x)  # as the engine runs it
        return _time(lambda: eigen_cam(fmap, 1, "auto", tracker=tracker, gram=gram))

    def forward(backend, x, torch_threads: int):
        torch.set_num_threads(torch_threads)  # the backend alone: as its engine sets torch's threads
        return _time(lambda: backend.forward_gram(x) if backend.name == "onnxruntime" else backend.forward(x))

    fns = {
        "frame-torch": lambda: _time(lambda: engines["torch"].process_one(frame, look)),
        "frame-ort": lambda: _time(lambda: ort.process_one(frame, look)),
        "forward-torch": lambda: forward(engines["torch"].backend, x, threads),
        "forward-ort": lambda: forward(ort.backend, x, 1),
        "cam-ort": cam_after_forward,
    }
    if bf16:
        half = engines["torch-bf16"]
        xh = half.preprocess(frame[None])
        fns["frame-torch-bf16"] = lambda: _time(lambda: half.process_one(frame, look))
        fns["forward-torch-bf16"] = lambda: forward(half.backend, xh, threads)
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        runs = {k: [] for k in fns}
        for i in range(repeats):
            order = list(fns) if i % 2 == 0 else list(reversed(fns))
            for k in order:
                runs[k].append(fns[k]())
    med = {k: statistics.median(v) for k, v in runs.items()}
    paired = lambda a, b: statistics.median([x / y for x, y in zip(runs[a], runs[b], strict=True)])  # noqa: E731
    rs = []
    for seed in range(4):
        f = scene(432, 768, seed=seed + 10)
        for e in engines.values():
            e.reset()
        rs.append(float(np.corrcoef(engines["torch"].process_one(f).cam.ravel(), ort.process_one(f).cam.ravel())[0, 1]))
    extra = {}
    if bf16:  # its maps against fp32 need a trained network (tests/test_any_model.py): random weights' are degenerate
        extra = {"frame_bf16_over_torch": paired("frame-torch-bf16", "frame-torch"),
                 "frame_bf16_over_ort": paired("frame-torch-bf16", "frame-ort"),
                 "forward_bf16_over_torch": paired("forward-torch-bf16", "forward-torch")}
    return {**extra,
        "model": name, "ms": med, "running": {k: e.backend.running for k, e in engines.items()},
        "frame_ort_over_torch": paired("frame-ort", "frame-torch"),
        "forward_ort_over_torch": paired("forward-ort", "forward-torch"),
        "cam_over_forward": paired("cam-ort", "forward-ort"),
        "r_min": min(rs),
    }


def alone(kind: str, name: str, repeats: int, warmup: int, threads: int, unset: bool = False) -> dict:
    """One backend's whole frame and forward, medians, in this process alone (``unset``: the
    engine's threads left unset, as a library user has them; torch's count is ``threads``)."""
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model=name, weights="none", backend=kind, device="cpu"), model=load_model(name, "none"))
    if not unset:
        engine.threads = threads  # as the front ends do
    frame, look = scene(432, 768, seed=1), RenderConfig()
    x = engine.preprocess(frame[None])
    run = engine.backend.forward_gram if kind == "onnxruntime" else engine.backend.forward
    frames, forwards = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            f = _time(lambda: engine.process_one(frame, look))
            t = _time(lambda: run(x))
            if i >= warmup:
                frames.append(f)
                forwards.append(t)
    return {"frame": statistics.median(frames), "forward": statistics.median(forwards), "running": engine.backend.running}


def rounds(name: str, count: int, repeats: int, warmup: int, threads: int, unset: bool = False) -> dict:
    """:func:`alone` for each backend in processes of their own, ``count`` rounds, alternating."""
    got = {"torch": [], "onnxruntime": []}
    for i in range(count):
        for kind in ("torch", "onnxruntime") if i % 2 == 0 else ("onnxruntime", "torch"):
            out = subprocess.run([sys.executable, __file__, "--worker", kind, "--models", name, "--threads", str(threads),
                                  "--repeats", str(repeats), "--warmup", str(warmup), *(["--unset"] if unset else [])],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"the {kind} worker for {name} failed:\n{out.stderr}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            if not row["running"].startswith(kind):  # ONNX Runtime fell back: no comparison to make
                sys.exit(f"{name}: {row['running']} ran the network where {kind} was asked for")
            got[kind].append(row)
    ratio = lambda key: [o[key] / t[key] for o, t in zip(got["onnxruntime"], got["torch"], strict=True)]  # noqa: E731
    return {"model": name, "threads": threads, "rounds": got,
            "frame_ort_over_torch": statistics.median(ratio("frame")), "frame_ratios": ratio("frame"),
            "forward_ort_over_torch": statistics.median(ratio("forward")), "forward_ratios": ratio("forward")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="network threads (0 = all cores but one, as the app)")
    p.add_argument("--models", nargs="+", default=["mobilenet_v3_large", "resnet50"])
    p.add_argument("--bf16", action="store_true", help="also the torch backend in bf16 (CPUs with bf16 kernels)")
    p.add_argument("--alone", type=int, default=0, metavar="R",
                   help="each backend in a process of its own, R rounds (see the module docstring)")
    p.add_argument("--unset", action="store_true",
                   help="with --alone: leave Engine.threads unset (a library user's default; torch has --threads)")
    p.add_argument("--worker", choices=["torch", "onnxruntime"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from eigencam_live.options import network_threads

    torch.set_num_threads(args.threads or network_threads())
    threads = torch.get_num_threads()
    if args.worker:
        print(json.dumps(alone(args.worker, args.models[0], args.repeats, args.warmup, threads, args.unset)))
        return 0
    if args.alone:
        if args.bf16:
            p.error("--alone compares fp32 torch and ONNX Runtime; --bf16 runs interleaved only")
        print(f"torch {torch.__version__}, {threads} network threads, {os.cpu_count()} cores, {platform.machine()}; "
              f"each backend alone, {args.alone} rounds{', Engine.threads unset' if args.unset else ''}")
        rows = [rounds(m, args.alone, args.repeats, args.warmup, threads, args.unset) for m in args.models]
        for r in rows:
            fr, fw = r["rounds"]["torch"], r["rounds"]["onnxruntime"]
            print(f"{r['model']:<20} frame ort/torch {r['frame_ort_over_torch']:.2f} "
                  f"({', '.join(f'{v:.2f}' for v in r['frame_ratios'])}); forward {r['forward_ort_over_torch']:.2f} "
                  f"({', '.join(f'{v:.2f}' for v in r['forward_ratios'])}); frame torch "
                  f"{statistics.median(o['frame'] for o in fr):.2f} ms, ort {statistics.median(o['frame'] for o in fw):.2f} ms")
        print(f"target: frame ort/torch <= {TARGETS['frame_ort_over_torch']}")
        print(json.dumps({"bench": "backends-alone", "threads": threads, "unset": args.unset, "rows": rows}))
        return 0
    print(f"torch {torch.__version__}, {threads} network threads, {os.cpu_count()} cores, {platform.machine()}")
    rows = [bench_model(m, args.repeats, args.warmup, threads, args.bf16) for m in args.models]
    print(f"{'model':<20} {'frame torch':>12} {'frame ort':>10} {'ratio':>6} {'fwd torch':>10} {'fwd ort':>8} "
          f"{'cam ort':>8} {'cam/fwd':>8} {'r min':>7}")
    for r in rows:
        ms = r["ms"]
        print(f"{r['model']:<20} {ms['frame-torch']:10.2f}ms {ms['frame-ort']:8.2f}ms {r['frame_ort_over_torch']:6.2f} "
              f"{ms['forward-torch']:8.2f}ms {ms['forward-ort']:6.2f}ms {ms['cam-ort']:6.3f}ms "
              f"{100 * r['cam_over_forward']:7.1f}% {r['r_min']:7.4f}")
    for r in rows:
        if "frame_bf16_over_torch" in r:
            print(f"{r['model']:<20} torch bf16: frame {r['ms']['frame-torch-bf16']:.2f} ms = {r['frame_bf16_over_torch']:.2f}x "
                  f"torch fp32, {r['frame_bf16_over_ort']:.2f}x ONNX Runtime; forward {r['ms']['forward-torch-bf16']:.2f} ms "
                  f"= {r['forward_bf16_over_torch']:.2f}x torch fp32")
    print(f"targets: frame ort/torch <= {TARGETS['frame_ort_over_torch']}, cam <= {100 * TARGETS['cam_over_forward']:.0f} % "
          f"of the forward, r >= {TARGETS['r']}")
    print(json.dumps({"bench": "backends", "threads": threads, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
