"""Soak: many live frames through the capture and the engine, watching memory and threads.

    python benchmarks/bench_soak.py                      # 20,000 frames
    python benchmarks/bench_soak.py --frames 2000 --every 200

The built-in demo scene, live (paced at ``--fps``, as a camera), is read by the capture thread into
its buffer; this thread takes the newest due frame (``Capture.read``, as the app's worker does),
runs ``Engine.process`` with a picture drawn (the app's look), and every ``--every`` frames samples
the process's resident memory (RSS), its Python threads and its OS threads (torch's and FFmpeg's
native pools included). A leak shows as RSS or threads that keep rising after the first samples.

Prints a table (one row per sample), the first, last and largest RSS and the growth from the first
sample to the last, then one JSON line. Weights are random (``--weights none``): memory and speed do
not depend on them. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from eigencam_live.engine import Engine, EngineConfig  # noqa: E402
from eigencam_live.options import network_threads  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402
from eigencam_live.video import Capture, DemoSource  # noqa: E402


def process_status() -> tuple[float, int]:
    """(RSS in MB, OS threads) of this process: /proc on Linux; elsewhere the peak RSS and -1."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024.0, int(fields["Threads"])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0), -1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20_000, help="live frames through the engine (default: %(default)s)")
    p.add_argument("--every", type=int, default=1000, help="frames between samples (default: %(default)s)")
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--short-side", type=int, default=160)
    p.add_argument("--size", default="320x240", metavar="WxH", help="demo frame size (default: %(default)s)")
    p.add_argument("--fps", type=float, default=120.0,
                   help="rate of the live demo; above what the engine keeps up with, frames are dropped as a "
                        "camera's would be (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="network threads (0: cores - 1, as the app)")
    args = p.parse_args()
    if args.frames < 1 or args.every < 1:
        p.error("--frames and --every must be positive")
    width, height = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads or network_threads())

    engine = Engine(EngineConfig(model=args.model, weights="none", short_side=args.short_side, device="cpu"))
    engine.threads = torch.get_num_threads()  # as the app does
    look = RenderConfig()
    capture = Capture(DemoSource((width, height), args.fps, realtime=True))
    rows: list[dict] = []
    frames = 0
    start = time.perf_counter()
    last_t, last_n = start, 0

    def sample() -> None:
        nonlocal last_t, last_n
        gc.collect()  # what remains after a collection is what is held
        rss, os_threads = process_status()
        now = time.perf_counter()
        rows.append({"frames": frames, "seconds": round(now - start, 1), "fps": round((frames - last_n) / (now - last_t), 1),
                     "dropped": capture.dropped, "rss_mb": round(rss, 1), "py_threads": threading.active_count(),
                     "os_threads": os_threads})
        last_t, last_n = now, frames

    with capture:
        # one frame first: the model is loaded and warm, threads started; that is the baseline
        engine.process([capture.read(timeout=30).image], look)
        frames = 1
        start = last_t = time.perf_counter()
        last_n = 1
        sample()
        while frames < args.frames:
            frame = capture.read(timeout=30)
            if frame is None:
                raise SystemExit("the demo source ended")
            result = engine.process([frame.image], look)[0]
            assert result.picture is not None
            frames += 1
            if frames % args.every == 0 or frames == args.frames:
                sample()
                r = rows[-1]
                print(f"  {r['frames']:>6} frames  {r['seconds']:>7.1f} s  rss {r['rss_mb']:7.1f} MB  "
                      f"threads {r['py_threads']}/{r['os_threads']}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    rss = [r["rss_mb"] for r in rows]
    summary = {
        "frames": frames, "seconds": round(seconds, 1), "fps": round((frames - 1) / seconds, 1),
        "dropped": capture.dropped, "model": args.model, "short_side": args.short_side, "size": args.size,
        "demo_fps": args.fps, "rss_first_mb": rss[0], "rss_last_mb": rss[-1], "rss_max_mb": max(rss),
        "rss_growth_mb": round(rss[-1] - rss[0], 1),
        "py_threads": sorted({r["py_threads"] for r in rows}), "os_threads": sorted({r["os_threads"] for r in rows}),
        "samples": rows,
    }
    print(f"\neigencam-live soak: {frames} live frames of the demo ({args.size} at {args.fps:g} fps), "
          f"{args.model} @ short side {args.short_side}, {torch.get_num_threads()} network threads")
    print(f"| {'frames':>7} | {'seconds':>8} | {'fps':>6} | {'dropped':>7} | {'RSS MB':>8} | {'py threads':>10} | "
          f"{'OS threads':>10} |")
    print(f"| {'-' * 7} | {'-' * 8} | {'-' * 6} | {'-' * 7} | {'-' * 8} | {'-' * 10} | {'-' * 10} |")
    for r in rows:
        print(f"| {r['frames']:>7} | {r['seconds']:>8.1f} | {r['fps']:>6.1f} | {r['dropped']:>7} | {r['rss_mb']:>8.1f} | "
              f"{r['py_threads']:>10} | {r['os_threads']:>10} |")
    print(f"RSS first {rss[0]:.1f} MB, last {rss[-1]:.1f} MB, max {max(rss):.1f} MB "
          f"(growth {rss[-1] - rss[0]:+.1f} MB); threads Python {summary['py_threads']}, OS {summary['os_threads']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
