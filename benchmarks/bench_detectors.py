"""Detectors on the CPU: forward, the Eigen-CAM step (over all stacked FPN levels) and the whole frame.

    python benchmarks/bench_detectors.py                      # ~1 min on 2 cores
    python benchmarks/bench_detectors.py --models ssdlite320_mobilenet_v3_large --repeats 30

For each detector, on 768x432 frames (``../shared/media/car-detection.mp4`` when there, else a
synthetic scene of that size), short side 320 (the size these two were trained at; SSDlite is
fixed at 320x320), random weights (the same cost as COCO's): the median over ``--repeats`` frames
of the backend's forward pass, of Eigen-CAM on the stacked map (``eigen_cam`` alone, as the engine
runs it), and of the whole frame through the engine (preprocess to finished picture with boxes).
Prints a table, then one JSON line. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from eigencam_live.cam import SubspaceTracker, eigen_cam  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig  # noqa: E402
from eigencam_live.options import network_threads  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402
from eigencam_live.video.yuv import to_bgr  # noqa: E402

CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "car-detection.mp4"


def frames(n: int) -> tuple[list[np.ndarray], str]:
    if CLIP.is_file():
        import av

        with av.open(str(CLIP)) as c:
            out = [to_bgr(f) for _, f in zip(range(n), c.decode(video=0), strict=False)]  # as the app decodes
        return out, CLIP.name
    from tests.conftest import scene

    return [np.roll(scene(432, 768, corner="c"), 8 * i, axis=1) for i in range(n)], "synthetic 768x432"


def median_ms(fn, items, warmup: int) -> float:
    for item in items[:warmup]:
        fn(item)
    times = []
    for item in items[warmup:]:
        t0 = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def measure(name: str, clip: list[np.ndarray], args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model=name, weights="none", short_side=args.short_side, device="cpu"))
    inputs = [engine.preprocess(f) for f in clip]
    with torch.inference_mode():
        forward = median_ms(engine.backend.forward, inputs, args.warmup)
        fmaps = [engine.backend.forward(x)[1] for x in inputs[: args.warmup + 5]]
        tracker = SubspaceTracker()
        cam = median_ms(lambda a: eigen_cam(a, tracker=tracker), fmaps * (1 + args.repeats // 5), args.warmup)
    look = RenderConfig()
    whole = median_ms(lambda f: engine.process_one(f, render=look), clip, args.warmup)
    return {"model": name, "input": "x".join(map(str, engine.input_size(clip[0].shape[:2]))),
            "map": "x".join(map(str, fmaps[0].shape[1:])), "forward_ms": round(forward, 1),
            "cam_ms": round(cam, 2), "cam_share": round(cam / forward, 3), "frame_ms": round(whole, 1),
            "fps": round(1000.0 / whole, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"])
    ap.add_argument("--short-side", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="network threads (0 = all cores but one, as the app)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads if args.threads > 0 else network_threads())
    clip, source = frames(args.repeats + args.warmup)
    rows = [measure(name, clip, args) for name in args.models]
    print(f"source: {source}, torch threads {torch.get_num_threads()}, medians of {args.repeats}")
    print(f"{'model':40} {'input':>8} {'map CxHxW':>12} {'forward':>9} {'Eigen-CAM':>10} {'share':>6} {'frame':>8} {'fps':>6}")
    for r in rows:
        print(f"{r['model']:40} {r['input']:>8} {r['map']:>12} {r['forward_ms']:>7.1f}ms {r['cam_ms']:>8.2f}ms "
              f"{100 * r['cam_share']:>5.1f}% {r['frame_ms']:>6.1f}ms {r['fps']:>6.1f}")
    print(json.dumps({"source": source, "threads": torch.get_num_threads(), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
