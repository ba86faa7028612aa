"""Annotating a folder of photos: images per second, as ``annotate`` runs it.

    python benchmarks/bench_images.py [--images 24] [--size 1920x1280] [--repeats 3] [--model NAME]

Writes ``--images`` JPEG photos (skimage's astronaut, coffee, chelsea and rocket, resized to
``--size``) to a temporary folder, then times :func:`~eigencam_live.annotate.annotate_images` over
all of them (PNG outputs beside, as ``annotate FOLDER`` writes them) with the cores shared as the
command line shares them (``options.headless_threads``), after one warm-up pass over four images.
Random weights (``--weights none``): speed does not depend on them. Prints one line per repeat,
the median, and one JSON line. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import torch  # noqa: E402

from eigencam_live.annotate import Job  # noqa: E402
from eigencam_live.annotate.images import annotate_images  # noqa: E402
from eigencam_live.engine import Engine, EngineConfig  # noqa: E402
from eigencam_live.options import headless_threads  # noqa: E402


def photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    paths = []
    for i in range(count):
        image = cv2.cvtColor(sources[i % len(sources)], cv2.COLOR_RGB2BGR)
        path = folder / f"photo{i:03d}.jpg"
        cv2.imwrite(str(path), cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--size", default="1920x1280", help="photo size WxH")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default="mobilenet_v3_large")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])
    p.add_argument("--batch-size", type=int, default=4)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(0)
    engine = Engine(EngineConfig(model=args.model, weights="none", backend=args.backend))
    if engine.device.type == "cpu":
        headless_threads(engine)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jobs = [Job(path, path.with_suffix(".eigencam.png")) for path in photos(folder, args.images, width, height)]
        annotate_images(engine, jobs[:4], batch_size=args.batch_size, progress=False)  # warm-up
        rates = []
        for i in range(args.repeats):
            result = annotate_images(engine, jobs, batch_size=args.batch_size, progress=False, overwrite=True)
            if result.failed or len(result.written) != len(jobs):
                sys.exit(f"not every image was written: {result.failed}")
            rates.append(len(jobs) / result.seconds)
            print(f"repeat {i + 1}: {rates[-1]:.1f} images/s")
    print(f"{args.images} photos of {width}x{height}, {args.model} ({engine.backend.running}): median "
          f"{statistics.median(rates):.1f} images/s")
    print(json.dumps({"bench": "images", "model": args.model, "backend": engine.backend.running, "size": [width, height],
                      "images": args.images, "rates": rates, "median": statistics.median(rates)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
