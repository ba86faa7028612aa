"""Measure the desktop app end to end: the real window on the demo scene.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_app.py            # ~25 s
    python benchmarks/bench_app.py --seconds 20 --model mobilenet_v3_large --short-side 224

Prints displayed fps, the processing time of one frame (the engine's map and picture, median), capture-to-display
latency (p50/p95, measured when the frame is painted), the ratio p95 latency / processing time
(about 1-2 when no queue builds up), and how late a 10 ms QTimer fired (the longest time the GUI
event loop was blocked). A table, then one JSON line. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PyQt5.QtCore import QEvent, QObject, QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

from eigencam_live.engine import EngineConfig  # noqa: E402
from eigencam_live.options import network_threads  # noqa: E402
from eigencam_live.render import RenderConfig  # noqa: E402
from ui.window import MainWindow  # noqa: E402


class PaintProbe(QObject):
    """Records, at each paint of the view, how long ago the frame on screen was captured."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.painted_captured: float | None = None
        self.latencies: list[float] = []
        self.waits: list[float] = []  # capture -> worker picks the frame up (ms)
        self.deliveries: list[float] = []  # worker done -> painted (ms)
        self.paints: list[float] = []
        self.recording = False

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Paint and self.recording:
            p = self.window.last_packet
            if p is not None and p.frame.captured != self.painted_captured:
                now = time.monotonic()
                self.painted_captured = p.frame.captured
                self.latencies.append((now - p.frame.captured) * 1000.0)
                self.waits.append((p.started - p.frame.captured) * 1000.0)
                self.deliveries.append((now - p.done) * 1000.0)
                self.paints.append(now)
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--model", default="mobilenet_v3_large")
    ap.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime"])
    ap.add_argument("--short-side", type=int, default=224)
    ap.add_argument("--source", default="scene", help="scene (the synthetic scene, --size and --fps), demo, or a file")
    ap.add_argument("--size", default="640x480", help="synthetic scene WxH")
    ap.add_argument("--fps", type=float, default=30.0, help="synthetic scene rate")
    ap.add_argument("--threads", type=int, default=0, help="network threads (0: the app's default, all cores but one)")
    args = ap.parse_args()
    network = args.threads if args.threads > 0 else network_threads()
    torch.set_num_threads(network)  # as the app does; the engine gives them to what runs the network
    width, height = (int(v) for v in args.size.split("x"))

    app = QApplication.instance() or QApplication([])
    window = MainWindow(
        EngineConfig(model=args.model, weights="none", short_side=args.short_side, backend=args.backend),
        RenderConfig(),
        args.source,
        settings=None,
        demo_size=(width, height),
        demo_fps=args.fps,
    )
    window.resize(1400, 860)
    window.show()
    probe = PaintProbe(window)
    window.view.installEventFilter(probe)

    process_ms: list[float] = []
    engine_ms: list[float] = []
    window.frame_shown.connect(lambda p: probe.recording and (process_ms.append(p.process_ms),
                                                                engine_ms.append(sum(p.result.timings.values()))))
    stalls: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        if probe.recording:
            stalls.append(max(0.0, (now - last[0]) * 1000.0 - 10.0))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(tick)
    heartbeat.start()

    state = {"t0": None, "dropped0": 0, "processed0": 0}

    def begin() -> None:
        if window.frames_displayed == 0:  # model still loading: wait
            QTimer.singleShot(500, begin)
            return
        probe.recording = True
        last[0] = time.monotonic()
        state["t0"] = time.monotonic()
        state["dropped0"] = window.pipeline.dropped
        state["processed0"] = window.pipeline.frames_processed
        QTimer.singleShot(int(args.seconds * 1000), app.quit)

    QTimer.singleShot(int(args.warmup * 1000), begin)
    app.exec_()
    elapsed = time.monotonic() - state["t0"]
    heartbeat.stop()
    t_close = time.monotonic()
    window.close()
    close_s = time.monotonic() - t_close

    lat = np.array(probe.latencies)
    proc = float(np.median(process_ms)) if process_ms else float("nan")
    stall = np.array(stalls) if stalls else np.zeros(1)
    figures = {
        "model": args.model,
        "short_side": args.short_side,
        "source": f"scene {width}x{height} @ {args.fps:g} fps" if args.source == "scene" else args.source,
        "network_threads": network,
        "seconds": round(elapsed, 2),
        "displayed_fps": round(len(probe.paints) / elapsed, 2),
        "processed_fps": round((window.pipeline.frames_processed - state["processed0"]) / elapsed, 2),
        "process_ms_median": round(proc, 2),
        "engine_ms_median": round(float(np.median(engine_ms)), 2) if engine_ms else None,
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "pickup_wait_ms_p50": round(float(np.percentile(probe.waits, 50)), 2),
        "pickup_wait_ms_p95": round(float(np.percentile(probe.waits, 95)), 2),
        "delivery_ms_p50": round(float(np.percentile(probe.deliveries, 50)), 2),
        "delivery_ms_p95": round(float(np.percentile(probe.deliveries, 95)), 2),
        "latency_p95_over_process": round(float(np.percentile(lat, 95)) / proc, 2),
        "gui_stall_ms_max": round(float(stall.max()), 2),
        "gui_stall_ms_p99": round(float(np.percentile(stall, 99)), 2),
        "dropped_by_capture": window.pipeline.dropped - state["dropped0"],
        "close_s": round(close_s, 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    rows = [
        ("displayed fps", f"{figures['displayed_fps']:.1f}", ">= 25"),
        ("processing per frame, median (ms)", f"{proc:.1f}", ""),
        ("  of which engine (ms)", f"{figures['engine_ms_median']}", ""),
        ("latency capture->paint p50 (ms)", f"{figures['latency_ms_p50']:.1f}", ""),
        ("latency capture->paint p95 (ms)", f"{figures['latency_ms_p95']:.1f}", ""),
        ("  capture -> pickup p50 / p95 (ms)", f"{figures['pickup_wait_ms_p50']:.0f} / {figures['pickup_wait_ms_p95']:.0f}", ""),
        ("  worker done -> paint p50 / p95 (ms)", f"{figures['delivery_ms_p50']:.0f} / {figures['delivery_ms_p95']:.0f}", ""),
        ("p95 latency / processing", f"{figures['latency_p95_over_process']:.2f}", "<= 2"),
        ("GUI event-loop stall max (ms)", f"{figures['gui_stall_ms_max']:.1f}", "<= 50"),
        ("GUI event-loop stall p99 (ms)", f"{figures['gui_stall_ms_p99']:.1f}", ""),
        ("frames dropped by capture", str(figures["dropped_by_capture"]), ""),
        ("close (s)", f"{close_s:.2f}", "< 2"),
        ("load average (1 min)", f"{figures['load_avg_1min']:.2f}", ""),
    ]
    print(f"\neigencam-live app: {figures['source']}, {args.model} @ short side {args.short_side}, "
          f"{figures['network_threads']} network threads, {elapsed:.1f} s")
    print(f"| {'figure':38} | {'value':>8} | target |")
    print(f"| {'-' * 38} | {'-' * 8} | ------ |")
    for name, value, target in rows:
        print(f"| {name:38} | {value:>8} | {target:6} |")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
