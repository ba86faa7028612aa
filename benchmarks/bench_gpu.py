"""GPU fast-path benchmark: forward, Eigen-CAM step, whole frame, pytorch_grad_cam.EigenCAM, fp16 vs fp32.

    python benchmarks/bench_gpu.py                  # the full table (meant for a CUDA GPU)
    python benchmarks/bench_gpu.py --quick          # small CPU-sized run (checks that it works)
    python benchmarks/bench_gpu.py --json out.json  # also write the JSON to a file

For each model (resnet50, mobilenet_v3_large), input (a 1080p frame resized to short side 224, and
the full 1080p frame as input) and batch (1 = live, 16 = annotate), in one process, on the same
input, medians of repeated runs with ``torch.cuda.synchronize()`` before every clock read:

* forward: the network alone on the prepared input (fp16 + channels_last on CUDA);
* cam: the Eigen-CAM step alone on that forward's activations (sync-free on CUDA);
* frame: the engine's whole frame path (``Engine.process`` with a render: on CUDA the resident
  route), uint8 frame upload -> finished overlay back on the host, one batch at a time;
* pipelined: the same with two batches in flight (``Engine.submit``, then ``.result()`` of the
  batch before: what the app's and annotate's loops do), frames per second;
* grad-cam: ``pytorch_grad_cam.EigenCAM`` per frame on the same model and input (fp32: its numpy
  SVD cannot take fp16), the widely used reference (batch 1 only);
* fp16 vs fp32: per (model, input), the engine's maps of ``batch`` distinct demo-scene frames in
  the device's low precision (fp16 on CUDA, bf16 on the CPU) against the same weights in fp32
  (``Engine.reconfigure(precision="fp32")``): the smallest Pearson r over the frames.

Weights are random (nothing is downloaded; speed does not depend on them), seeded, so a rerun
gives the same network, with their BatchNorm statistics measured on demo-scene frames
(``--no-calibrate``: torchvision's untouched init): untouched, the activations of a random
mobilenet_v3_large shrink layer by layer to ~1e-8 at its target layer, below fp16's range, where a
trained network's are of order 1; calibrated, they have a trained network's scale, so the fp16 vs
fp32 comparison measures rounding, not underflow. Prints a table, the targets, and one JSON line.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eigencam_live.cam import eigen_cam  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig, input_size  # noqa: E402
from eigencam_live.models import ActivationCapture, LoadedModel, load_model  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402
from eigencam_live.video import DemoSource  # noqa: E402

TARGETS = ("Targets (H100): cam <= 10% of the fp16 forward; resnet50 1080p->224 batch 1 >= 250 fps; "
           ">= 30x faster than pytorch_grad_cam.EigenCAM per frame; fp16 maps equal fp32 maps at r >= 0.999.")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_ms(fn, device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _frames(batch: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)).astype(np.uint8)
    frame = np.repeat(base[:, :, None], 3, axis=2)
    frame[height // 4 : height // 2, width // 5 : width // 2] = rng.integers(0, 255, (height // 2 - height // 4,
                                                                                     width // 2 - width // 5, 3))
    return np.repeat(frame[None], batch, axis=0)


def _demo_frames(count: int, height: int, width: int) -> np.ndarray:
    """``count`` distinct frames of the demo scene (objects at different places), every 7th frame."""
    src = DemoSource((width, height), 30, realtime=False, frames=7 * count)
    out = []
    while (f := src.read()) is not None:
        if f.index % 7 == 0:
            out.append(f.image)
    return np.stack(out[:count])


def calibrated_weights(model: str, size: tuple[int, int] = (224, 224), batches: int = 2) -> dict:
    """A seeded random network's state_dict with its BatchNorm running statistics measured on demo
    frames (train-mode forward passes, cumulative averages), on the CPU in fp32."""
    torch.manual_seed(0)
    loaded = load_model(model, "none")
    net = loaded.net
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        frames = _demo_frames(4 * batches, *size)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).flip(1).float() / 255.0  # BGR -> RGB
        x = (x - torch.tensor(loaded.mean).view(1, 3, 1, 1)) / torch.tensor(loaded.std).view(1, 3, 1, 1)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        net.train()
        with torch.no_grad():
            for chunk in x.split(4):
                net(chunk)
        net.eval()
        for m in norms:
            m.momentum = 0.1
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _model(model: str, weights: dict | None) -> LoadedModel:
    torch.manual_seed(0)
    loaded = load_model(model, "none")
    if weights is not None:
        loaded.net.load_state_dict(weights)
    return loaded


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0  # two flat maps agree; a flat and a varying one do not
    return float(a @ b / (na * nb))


def _gradcam_ms(model_name: str, layer: str, x32: torch.Tensor, device: torch.device, repeats: int,
                weights: dict | None = None) -> float | None:
    try:
        from pytorch_grad_cam import EigenCAM
    except ImportError:
        return None

    net = _model(model_name, weights).net.eval().to(device)
    target = dict(net.named_modules())[layer]
    with EigenCAM(net, target_layers=[target]) as cam:
        return _median_ms(lambda: cam(input_tensor=x32, targets=None), device, repeats, warmup=1)


def _pipelined_fps(eng: Engine, frames: np.ndarray, look: RenderConfig, batches: int, depth: int = 2) -> float:
    """Frames per second with ``depth`` batches in flight: submit, then wait for the oldest."""
    for _ in range(2):  # warm-up
        eng.submit(frames, look).result()
    t0 = time.perf_counter()
    pending: deque = deque()
    for _ in range(batches):
        pending.append(eng.submit(frames, look))
        if len(pending) >= depth:
            pending.popleft().result()
    while pending:
        pending.popleft().result()
    return batches * len(frames) / (time.perf_counter() - t0)


def precision_agreement(eng: Engine, frames: np.ndarray, low: str) -> dict:
    """The engine's maps in ``low`` precision against the same weights in fp32, on ``frames``."""
    before = eng.config.precision
    try:
        eng.reconfigure(precision=low)
        eng.reset()
        lo = [r.cam for r in eng.process(frames)]
        eng.reconfigure(precision="fp32")
        eng.reset()
        hi = [r.cam for r in eng.process(frames)]
    finally:
        eng.reconfigure(precision=before)
        eng.reset()
    rs = [_pearson(a, b) for a, b in zip(lo, hi, strict=True)]
    return {"precision": low, "frames": len(rs), "r_min": min(rs), "r_median": float(np.median(rs))}


def bench_case(model: str, frame_hw: tuple[int, int], short_side: int, batch: int, device: torch.device,
               repeats: int, gradcam_repeats: int, low_precision: str | None, resident: bool | None = None,
               weights: dict | None = None) -> dict:
    eng = Engine(EngineConfig(model=model, weights="none", short_side=short_side, device=device.type),
                 model=_model(model, weights), resident=resident)
    frames = _frames(batch, *frame_hw)
    look = RenderConfig()
    h, w = input_size(frame_hw[0], frame_hw[1], short_side, eng.loaded.spec.fixed_input)
    sync_free = eng.resident
    with torch.inference_mode():
        x = eng.preprocess(frames)
        net, layer = eng.loaded.net, eng.layer

        def forward():
            net(x)

        with ActivationCapture(net, layer) as cap:
            net(x)
            fmap = cap.map((h, w), layer)
        fwd = _median_ms(forward, device, repeats, warmup=3)
        cam = _median_ms(lambda: eigen_cam(fmap, sync_free=sync_free), device, repeats, warmup=3)
    frame = _median_ms(lambda: eng.process(frames, look), device, repeats, warmup=3)
    piped = _pipelined_fps(eng, frames, look, batches=max(4, repeats))
    row = {
        "model": model, "frame": f"{frame_hw[1]}x{frame_hw[0]}", "input": f"{w}x{h}", "short_side": short_side,
        "batch": batch, "dtype": str(eng.dtype).replace("torch.", ""), "resident": eng.resident,
        "forward_ms": fwd / batch, "cam_ms": cam / batch, "frame_ms": frame / batch, "fps": 1000.0 * batch / frame,
        "pipelined_fps": piped, "cam_over_forward": cam / fwd, "activations": list(fmap.shape[1:]),
    }
    if gradcam_repeats > 0 and batch == 1:
        x32 = x.float().clone()
        g = _gradcam_ms(model, layer, x32, device, gradcam_repeats, weights)
        if g is not None:
            row["gradcam_ms"] = g
            row["speedup_vs_gradcam"] = g / (frame / batch)
    if low_precision:
        row["fp16_vs_fp32"] = precision_agreement(eng, _demo_frames(batch, *frame_hw), low_precision)
    return row


def _print_row(row: dict) -> None:
    agree = row.get("fp16_vs_fp32")
    print(f"{row['model']:<20} {row['frame']:>9} in {row['input']:>9} b{row['batch']:<3} {row['dtype']:<8} "
          f"fwd {row['forward_ms']:8.2f} ms  cam {row['cam_ms']:7.3f} ms ({100 * row['cam_over_forward']:5.1f}%)  "
          f"frame {row['frame_ms']:8.2f} ms  {row['fps']:8.1f} fps  pipelined {row['pipelined_fps']:8.1f} fps"
          + (f"  grad-cam {row['gradcam_ms']:8.2f} ms (x{row['speedup_vs_gradcam']:.1f})" if "gradcam_ms" in row else "")
          + (f"  {agree['precision']} vs fp32 r_min {agree['r_min']:.5f}" if agree else ""),
          flush=True)


def _size(text: str) -> tuple[int, int]:
    """``WxH`` -> ``(H, W)``."""
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="a small run (CPU-sized): batch 1 and 4, short side 224 only")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--models", default="resnet50,mobilenet_v3_large")
    ap.add_argument("--frame-size", default="1920x1080", help="WxH of the frames (default 1920x1080)")
    ap.add_argument("--short-sides", default=None,
                    help="comma-separated network short sides; 'full' = the frame's own (default 224,full; --quick 224)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,16; --quick 1,4)")
    ap.add_argument("--gradcam-repeats", type=int, default=None, help="0 = no pytorch_grad_cam run")
    ap.add_argument("--no-gradcam", action="store_true")
    ap.add_argument("--no-precision-check", action="store_true", help="skip the fp16 vs fp32 maps")
    ap.add_argument("--no-calibrate", action="store_true",
                    help="torchvision's untouched random init (no BatchNorm statistics from demo frames)")
    ap.add_argument("--resident", action="store_true",
                    help="on the CPU, run the frame path the CUDA way (device route, sync-free solver): a rehearsal")
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        print("No CUDA GPU here: the table below is the device path run on the CPU "
              "(the GPU targets cannot be checked on this machine).")
    hd = _size(args.frame_size)
    shorts = (args.short_sides or ("224" if args.quick else "224,full")).split(",")
    batches = [int(b) for b in (args.batches or ("1,4" if args.quick else "1,16")).split(",")]
    repeats = args.repeats or (5 if args.quick or device.type != "cuda" else 30)
    gradcam_repeats = 0 if args.no_gradcam else (args.gradcam_repeats if args.gradcam_repeats is not None
                                                 else max(3, repeats // 6))
    low = None if args.no_precision_check else ("fp16" if device.type == "cuda" else "bf16")
    rows, errors = [], []
    t_start = time.perf_counter()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()

    def report(done: bool) -> str:
        """The JSON, also written to ``--json`` after every case (a run cut short keeps what it measured)."""
        text = json.dumps({"bench": "gpu", "device": device.type, "device_name": name, "torch": torch.__version__,
                           "cuda": torch.version.cuda, "frame_size": args.frame_size, "repeats": repeats,
                           "gradcam_repeats": gradcam_repeats, "complete": done,
                           "weights": "random (seeded)" + ("" if args.no_calibrate else
                                                           ", BatchNorm statistics from demo frames"),
                           "seconds": round(time.perf_counter() - t_start, 1), "rows": rows, "errors": errors})
        if args.json is not None:
            args.json.write_text(text + "\n")
        return text

    for model in args.models.split(","):
        try:
            weights = None if args.no_calibrate else calibrated_weights(model)
        except Exception as exc:  # the untouched init still measures speed
            print(f"{model}: BatchNorm calibration FAILED ({type(exc).__name__}: {exc}); untouched init", flush=True)
            errors.append({"model": model, "stage": "calibration", "error": f"{type(exc).__name__}: {exc}"[:2000]})
            weights = None
        for short in shorts:
            side = min(hd) if short == "full" else int(short)
            for batch in batches:
                try:
                    # The fp16/fp32 agreement once per (model, input), on the largest batch.
                    row = bench_case(model, hd, side, batch, device, repeats,
                                     gradcam_repeats if side <= 480 else max(1, min(gradcam_repeats, 3)),
                                     low if batch == max(batches) else None, True if args.resident else None,
                                     weights)
                except Exception as exc:  # one failing case must not hide the others
                    errors.append({"model": model, "short_side": side, "batch": batch,
                                   "error": f"{type(exc).__name__}: {exc}"[:2000]})
                    print(f"{model} short side {side} batch {batch}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    report(False)
                    continue
                finally:
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # the case's engine is gone: its cached blocks too
                rows.append(row)
                _print_row(row)
                report(False)
    print("\n" + TARGETS)
    print(report(True))
    return 1 if errors and not rows else 0


if __name__ == "__main__":
    sys.exit(main())
