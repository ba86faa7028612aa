"""GPU fast-path benchmark: forward, Eigen-CAM step, whole frame, and pytorch_grad_cam.EigenCAM.

    python benchmarks/bench_gpu.py                  # the full table (meant for a CUDA GPU)
    python benchmarks/bench_gpu.py --quick          # small CPU-sized run (checks that it works)

For each model (resnet50, mobilenet_v3_large), input (a 1080p frame resized to short side 224, and
the full 1080p frame as input) and batch (1 = live, 16 = annotate), in one process, on the same
input, medians of repeated runs with ``torch.cuda.synchronize()`` before every clock read:

* forward: the network alone on the prepared input (fp16 + channels_last on CUDA);
* cam: the Eigen-CAM step alone on that forward's activations (sync-free on CUDA);
* frame: the engine's whole frame path (``Engine.process`` with a render: on CUDA the resident
  route), uint8 frame upload -> finished overlay back on the host;
* grad-cam: ``pytorch_grad_cam.EigenCAM`` per frame on the same model and input (fp32: its numpy
  SVD cannot take fp16), the widely used reference.

Prints a table, the targets, and one JSON line. Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eigencam_live.cam import eigen_cam  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig, input_size  # noqa: E402
from eigencam_live.models import ActivationCapture  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402


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


def _gradcam_ms(model_name: str, layer: str, x32: torch.Tensor, device: torch.device, repeats: int) -> float | None:
    try:
        from pytorch_grad_cam import EigenCAM
    except ImportError:
        return None
    from torchvision.models import get_model

    net = get_model(model_name, weights=None).eval().to(device)
    target = dict(net.named_modules())[layer]
    with EigenCAM(net, target_layers=[target]) as cam:
        return _median_ms(lambda: cam(input_tensor=x32, targets=None), device, repeats, warmup=1)


def bench_case(model: str, frame_hw: tuple[int, int], short_side: int, batch: int, device: torch.device,
               repeats: int, with_gradcam: bool) -> dict:
    eng = Engine(EngineConfig(model=model, weights="none", short_side=short_side, device=device.type))
    frames = _frames(batch, *frame_hw)
    look = RenderConfig()
    h, w = input_size(frame_hw[0], frame_hw[1], short_side, eng.loaded.spec.fixed_input)
    sync_free = device.type == "cuda"
    with torch.inference_mode():
        x = eng.preprocess(frames)
        net, layer, layout = eng.loaded.net, eng.layer, eng.loaded.spec.layout

        def forward():
            net(x)

        with ActivationCapture(net, layer, layout) as cap:
            net(x)
            fmap = cap.map(layer)
        fwd = _median_ms(forward, device, repeats, warmup=3)
        cam = _median_ms(lambda: eigen_cam(fmap, sync_free=sync_free), device, repeats, warmup=3)
    frame = _median_ms(lambda: eng.process(frames, look), device, repeats, warmup=3)
    row = {
        "model": model, "frame": f"{frame_hw[1]}x{frame_hw[0]}", "input": f"{w}x{h}", "batch": batch,
        "dtype": str(eng.dtype).replace("torch.", ""), "forward_ms": fwd / batch, "cam_ms": cam / batch,
        "frame_ms": frame / batch, "fps": 1000.0 * batch / frame, "cam_over_forward": cam / fwd,
        "activations": list(fmap.shape[1:]),
    }
    if with_gradcam and batch == 1:
        x32 = x.float().clone()
        g = _gradcam_ms(model, layer, x32, device, max(3, repeats // 3))
        if g is not None:
            row["gradcam_ms"] = g
            row["speedup_vs_gradcam"] = g / (frame / batch)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="a small run (CPU-sized): batch 1 and 4, short side 224 only")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--models", default="resnet50,mobilenet_v3_large")
    ap.add_argument("--no-gradcam", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        print("No CUDA GPU here: the table below is the device path run on the CPU "
              "(the GPU targets cannot be checked on this machine).")
    hd = (1080, 1920)
    if args.quick:
        cases = [(hd, 224, 1), (hd, 224, 4)]
        repeats = args.repeats or 5
    else:
        cases = [(hd, 224, 1), (hd, 224, 16), (hd, 1080, 1), (hd, 1080, 16)]
        repeats = args.repeats or (30 if device.type == "cuda" else 5)
    rows = []
    for model in args.models.split(","):
        for frame_hw, short, batch in cases:
            row = bench_case(model, frame_hw, short, batch, device, repeats, not args.no_gradcam)
            rows.append(row)
            print(f"{row['model']:<20} {row['frame']:>9} in {row['input']:>9} b{row['batch']:<3} {row['dtype']:<8} "
                  f"fwd {row['forward_ms']:8.2f} ms  cam {row['cam_ms']:7.3f} ms ({100 * row['cam_over_forward']:5.1f}%)  "
                  f"frame {row['frame_ms']:8.2f} ms  {row['fps']:8.1f} fps"
                  + (f"  grad-cam {row['gradcam_ms']:8.2f} ms (x{row['speedup_vs_gradcam']:.1f})" if "gradcam_ms" in row else ""),
                  flush=True)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()
    print("\nTargets (H100): cam <= 10% of the fp16 forward; resnet50 1080p->224 batch 1 >= 250 fps; "
          ">= 30x faster than pytorch_grad_cam.EigenCAM per frame.")
    print(json.dumps({"bench": "gpu", "device": device.type, "device_name": name, "torch": torch.__version__,
                      "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
