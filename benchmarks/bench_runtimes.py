"""What this CPU allows: one network's forward pass in each runtime at hand, plain exports, same input.

    python benchmarks/bench_runtimes.py [--repeats 15] [--models mobilenet_v3_large resnet50] [--threads 1]

The engine's ONNX Runtime backend is measured against torch in ``bench_backends.py``; this asks
how much faster any runtime can be on this machine at all. For each model (random weights, input
224 x 384, one process, variants interleaved), the forward pass of:

* ``torch eager`` and ``torch traced`` (the torch backend's frozen, optimised copy);
* ``onnxruntime``: a plain export (logits only, fixed shape), the project's session options;
* ``openvino f32`` and ``openvino bf16`` where the ``openvino`` package is installed (it is not a
  requirement): a second optimised runtime (oneDNN), and what bf16 kernels give on a CPU that has
  them (AVX512-BF16, AMX), with the logits' Pearson r against fp32.

Prints a table and one JSON line. Not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eigencam_live.backends.onnx_file import runtime_options  # noqa: E402
from eigencam_live.backends.traced import build_traced  # noqa: E402
from eigencam_live.models import load_model  # noqa: E402


def _export(net: torch.nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buffer, input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False)
    return buffer.getvalue()


def _variants(name: str, threads: int) -> tuple[dict, dict]:
    import onnxruntime as ort

    torch.manual_seed(0)
    loaded = load_model(name, "none")
    net = loaded.net.eval()
    x = torch.randn(1, 3, 224, 384)
    model = _export(net, x)
    traced = build_traced(net, loaded.spec.layer, x)
    session = ort.InferenceSession(model, runtime_options(threads), providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    fns = {"torch eager": lambda: net(x).numpy(), "onnxruntime": lambda: session.run(None, feed)[0]}
    if traced is not None:
        fns["torch traced"] = lambda: traced(x)[0].numpy()
    try:
        import openvino as ov
    except ImportError:
        return fns, {}
    core = ov.Core()
    for precision in ("f32", "bf16"):
        compiled = core.compile_model(core.read_model(model), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        fns[f"openvino {precision}"] = lambda r=request: r.infer({0: feed["x"]})[0].copy()
    return fns, {"openvino": ov.__version__}


def bench_model(name: str, repeats: int, threads: int) -> dict:
    fns, versions = _variants(name, threads)
    with torch.inference_mode():
        reference = fns["torch eager"]()
        r = {k: float(np.corrcoef(reference.ravel(), np.asarray(fn(), np.float32).ravel())[0, 1]) for k, fn in fns.items()}
        for fn in fns.values():
            fn()
        runs = {k: [] for k in fns}
        for i in range(repeats):
            for k in (list(fns) if i % 2 == 0 else list(reversed(fns))):
                t0 = time.perf_counter()
                fns[k]()
                runs[k].append((time.perf_counter() - t0) * 1000.0)
    ms = {k: statistics.median(v) for k, v in runs.items()}
    ort = runs["onnxruntime"]
    over_ort = {k: statistics.median([a / b for a, b in zip(v, ort, strict=True)]) for k, v in runs.items()}
    return {"model": name, "ms": ms, "over_onnxruntime": over_ort, "logits_r": r, **versions}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1, help="threads of every runtime (1: the app's on 2 cores)")
    p.add_argument("--models", nargs="+", default=["mobilenet_v3_large", "resnet50"])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [bench_model(m, args.repeats, args.threads) for m in args.models]
    for row in rows:
        print(f"{row['model']} (input 224x384, {args.threads} thread(s); ratio: paired, to ONNX Runtime; r: logits against torch eager)")
        for k, ms in row["ms"].items():
            print(f"  {k:<14} {ms:8.2f} ms  {row['over_onnxruntime'][k]:5.2f}x  r {row['logits_r'][k]:.5f}")
    print(json.dumps({"bench": "runtimes", "threads": args.threads, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
