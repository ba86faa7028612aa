"""Video pipeline throughput: each stage alone, then the overlapped annotate pipeline.

    python benchmarks/bench_video.py [--video PATH] [--frames N] [--repeats R] [--model NAME]

Stages, each timed alone over the same frames, with the settings ``annotate`` uses (on the CPU
the network and x264 share the cores, ``options.headless_threads``; batch size 4, x264 veryfast):

* decode: the threaded file capture (PyAV), frames to BGR arrays;
* model+map: ``Engine.process`` (preprocess, forward, Eigen-CAM, map resized onto the frame);
* render+encode: ``render`` (overlay) and the H.264 sink, file finished;
* end-to-end: ``annotate_file`` (decode, inference and encoding in three threads).

Figures: fps per stage and end to end; ``e2e/sum`` = end-to-end time per frame over the sum of the
stage times (target <= 0.9: overlapping must gain); ``slowest/e2e`` = the slowest stage's time per
frame over the end-to-end time (1.0 = perfect overlap; the figure that matters on a GPU, target >=
0.8). Medians over ``--repeats`` runs; ratios are taken within each run, then the median.

Prints a table and one JSON line. Weights are random (``--weights none``): speed does not depend on
them. Without the default video a synthetic 768x432 clip is written to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from eigencam_live.annotate import Job, annotate_file  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig  # noqa: E402
from eigencam_live.options import headless_threads  # noqa: E402
from eigencam_live.render import RenderConfig, render  # noqa: E402
from eigencam_live.video import Capture, DemoSource, VideoSink, open_source  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "media" / "car-detection.mp4"


def synthetic_clip(folder: Path, frames: int) -> Path:
    path = folder / "synthetic.mp4"
    demo = DemoSource((768, 432), 25, realtime=False, frames=frames)
    with VideoSink(path, width=768, height=432, fps=25) as sink:
        while (f := demo.read()) is not None:
            sink.write(f.image, f.pts)
    return path


def bench_decode(video: Path, frames: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    got = []
    with Capture(open_source(str(video))) as cap:
        for f in cap:
            got.append(f)
            if len(got) >= frames:
                break
    return time.perf_counter() - t0, got


def bench_model(engine: Engine, frames: list, batch: int) -> tuple[float, list]:
    engine.reset()
    images = [f.image for f in frames]
    t0 = time.perf_counter()
    results = []
    for i in range(0, len(images), batch):
        results += engine.process(images[i : i + batch])
    return time.perf_counter() - t0, results


def bench_render_encode(frames: list, results: list, out: Path, look: RenderConfig, rate, preset: str,
                        encoder_threads: int) -> float:
    h, w = frames[0].image.shape[:2]
    t0 = time.perf_counter()
    with VideoSink(out, width=w, height=h, fps=rate, overwrite=True, preset=preset, threads=encoder_threads) as sink:
        for f, r in zip(frames, results, strict=True):
            sink.write(render(f.image, r.heatmap, look.view, look.alpha, look.colormap, in_range=True), f.pts)  # as annotate
    return time.perf_counter() - t0


def bench_end_to_end(engine: Engine, video: Path, out: Path, frames: int, batch: int,
                     look: RenderConfig, preset: str, encoder_threads: int) -> tuple[float, float]:
    """Wall seconds, and the CPU cores this process got meanwhile (CPU time / wall time): on a
    machine shared with other jobs, below ~1.5 on 2 cores means there was nothing to overlap with."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = annotate_file(engine, Job(video, out), look, batch_size=batch, overwrite=True, progress=False,
                           max_frames=frames, preset=preset, encoder_threads=encoder_threads)
    seconds = time.perf_counter() - t0
    assert result.frames == frames, (result.frames, frames)
    return seconds, (time.process_time() - c0) / seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--frames", type=int, default=0, help="frames per measurement (0 = the whole clip, max 1000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default="mobilenet_v3_large")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])
    p.add_argument("--short-side", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="network CPU threads (0 = annotate's default)")
    p.add_argument("--preset", default="veryfast", help="x264 preset, as annotate's --preset")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_video_"))
    video = args.video
    if not video.is_file():
        print(f"{video} not found: using a synthetic 768x432 clip", file=sys.stderr)
        video = synthetic_clip(tmp, args.frames or 300)
    info = open_source(str(video))
    rate, total = info.info.rate, info.info.frame_count
    info.close()
    frames = min(args.frames or total or 300, total or 10**9, 1000)

    engine = Engine(EngineConfig(model=args.model, weights="none", short_side=args.short_side, device=args.device,
                                 backend=args.backend))
    cores = os.cpu_count() or 1
    encoder_threads = 0
    if engine.device.type == "cpu":
        encoder_threads = headless_threads(engine, args.threads)  # as annotate shares the cores
    threads = engine.threads or torch.get_num_threads()  # the network's (torch may keep 1 beside ONNX Runtime)
    look = RenderConfig()

    # Warm-up: first-call allocations, x264 start-up, file cache.
    _, warm = bench_decode(video, min(frames, 16))
    bench_model(engine, warm, args.batch_size)

    runs = []
    for _ in range(args.repeats):
        t_dec, decoded = bench_decode(video, frames)
        t_model, results = bench_model(engine, decoded, args.batch_size)
        t_enc = bench_render_encode(decoded, results, tmp / "stage.mp4", look, rate, args.preset, encoder_threads)
        t_e2e, cores_used = bench_end_to_end(engine, video, tmp / "e2e.mp4", frames, args.batch_size, look, args.preset,
                                             encoder_threads)
        # Reference: the network alone with every core (what a sequential loop would use); torch's
        # threads only (an ONNX Runtime session keeps the threads it was built with).
        t_all = t_model
        if engine.device.type == "cpu" and threads != cores and engine.backend.name == "torch":
            engine.threads = cores
            some = decoded[: min(len(decoded), 64)]  # a reference only: a few batches suffice
            t_all = bench_model(engine, some, args.batch_size)[0] * len(decoded) / len(some)
            engine.threads = threads
        per = {k: v / frames for k, v in (("decode", t_dec), ("model", t_model), ("encode", t_enc), ("e2e", t_e2e),
                                           ("model_all_cores", t_all))}
        stage_sum = per["decode"] + per["model"] + per["encode"]
        slowest = max(per["decode"], per["model"], per["encode"])
        sequential = per["decode"] + per["model_all_cores"] + per["encode"]
        runs.append({**per, "ratio_sum": per["e2e"] / stage_sum, "ratio_slowest": slowest / per["e2e"],
                     "ratio_sequential": per["e2e"] / sequential, "cores_used": cores_used})
        del decoded, results

    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    fps = {k: 1.0 / med[k] for k in ("decode", "model", "encode", "e2e", "model_all_cores")}
    device = torch.cuda.get_device_name() if engine.device.type == "cuda" else f"cpu x{os.cpu_count()}"
    print(f"video: {video.name}  {frames} frames  model: {args.model} @ short side {args.short_side}  "
          f"batch {args.batch_size}  device: {device}  network threads: torch {threads}, "
          f"{engine.backend.name} {getattr(engine.backend, 'threads', None) or threads}  x264 threads: "
          f"{encoder_threads or 'auto'}  preset: {args.preset}  "
          f"repeats: {args.repeats}")
    print(f"{'stage':<16}{'fps':>9}{'ms/frame':>10}")
    for name, label in (("decode", "decode"), ("model", "model+map"), ("encode", "render+encode"),
                        ("e2e", "end-to-end")):
        print(f"{label:<16}{fps[name]:>9.1f}{med[name] * 1000:>10.2f}")
    if engine.backend.name == "torch" and engine.device.type == "cpu":
        print(f"{'(model+map, ' + str(cores) + ' threads)':<16}{fps['model_all_cores']:>9.1f}{med['model_all_cores'] * 1000:>10.2f}")
    print(f"e2e / sum of stages: {med['ratio_sum']:.2f}  (target <= 0.9)")
    print(f"e2e / sequential with the network on every core: {med['ratio_sequential']:.2f}")
    print(f"slowest stage / e2e: {med['ratio_slowest']:.2f}  (1.0 = perfect overlap; GPU target >= 0.8)")
    print(f"CPU cores this process got during end-to-end: {med['cores_used']:.2f} of {cores} "
          f"(load average {os.getloadavg()[0]:.1f}; a busy machine leaves nothing to overlap with)")
    print(json.dumps({
        "bench": "video", "video": video.name, "frames": frames, "model": args.model, "short_side": args.short_side,
        "batch_size": args.batch_size, "device": device, "threads": threads, "encoder_threads": encoder_threads,
        "preset": args.preset,
        "repeats": args.repeats,
        "decode_fps": round(fps["decode"], 2), "model_fps": round(fps["model"], 2),
        "render_encode_fps": round(fps["encode"], 2), "end_to_end_fps": round(fps["e2e"], 2),
        "model_all_cores_fps": round(fps["model_all_cores"], 2),
        "e2e_over_sum": round(med["ratio_sum"], 3), "slowest_over_e2e": round(med["ratio_slowest"], 3),
        "e2e_over_sequential_all_cores": round(med["ratio_sequential"], 3), "cores_used": round(med["cores_used"], 2),
        "load_average": round(os.getloadavg()[0], 2),
        "runs": [{k: round(v, 5) for k, v in r.items()} for r in runs],
    }))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
