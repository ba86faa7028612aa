"""Signals that never lose work (issue 13, items 7 and 8): SIGINT and SIGTERM close the app as its
close button does and exit 130 / 143; SIGTERM to ``annotate`` leaves a playable partial output as
Ctrl-C does; part files of runs that died are removed by the next run on the same output.

Every process here is a child, and each signal is sent once the child says it is far enough (a
line on its stdout, or a frame count reached in its own sink): no test sleeps to win a race.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from eigencam_live.cli import annotate_main

from .media import annotate_signalled_at_frame, probe, write_clip

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # The app's QSettings file goes to the test's folder, never the user's.
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("DISPLAY", None)
    return env


def _lines(stream) -> queue.Queue:
    """The lines of a child's pipe, read by a thread (so that waiting on them can time out)."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, name="test-pipe", daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, prefix: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, end - time.monotonic()))
        if line is None:
            raise AssertionError(f"the child ended before printing {prefix!r}")
        if line.startswith(prefix):
            return line


# -- item 7: the app ------------------------------------------------------------------------------
# main.py's app on the demo, recording from its second frame; it says "shown N" for each frame so
# that the test knows the window is up, the worker busy and the recording under way.
_APP = r"""
import sys
from ui import window as window_module

real_show = window_module.MainWindow.show
def show(self):
    real_show(self)
    count = [0]
    def on_frame(packet):
        count[0] += 1
        if count[0] == 2:
            self.toggle_recording()
        print("shown", count[0], self.recording_path, flush=True)
    self.frame_shown.connect(on_frame)
window_module.MainWindow.show = show

from ui.app import app_main
sys.exit(app_main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_closes_the_app_like_its_close_button(tmp_path, sig, code):
    av = pytest.importorskip("av")
    snaps = tmp_path / "snaps"
    proc = subprocess.Popen(
        [sys.executable, "-c", _APP, "--source", "demo", "--model", "mobilenet_v3_small", "--weights", "none",
         "--short-side", "64", "--demo-size", "160x120", "--threads", "1", "--snapshots", str(snaps)],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _lines(proc.stdout)
        try:
            _wait_for(lines, "shown 6", timeout=120)  # recording since frame 2
        except (AssertionError, queue.Empty):
            proc.kill()
            pytest.fail(f"the app never showed 6 frames:\n{proc.stderr.read()[-3000:]}")
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=20)
        gone = time.monotonic() - sent
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert gone < 10.0, f"the app took {gone:.1f} s to close"
    # What the close button does: the settings saved ...
    (ini,) = (tmp_path / "config").rglob("*.conf")
    text = ini.read_text()
    assert "source=demo" in text and "model=mobilenet_v3_small" in text and "geometry" in text
    # ... and the recording finished, playable
    (video,) = snaps.glob("*.mp4")
    with av.open(str(video)) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) >= 1
    assert not list(snaps.glob(".*part*")), "the recording's part file was left behind"


# -- item 8: annotate -----------------------------------------------------------------------------
# SIGTERM, sent by the process to itself right after its sink wrote frame 8 of 300: the input
# cannot be finished before the signal is handled.
_TERMINATE_AT_FRAME_8 = annotate_signalled_at_frame(8, "SIGTERM")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_to_annotate_leaves_a_playable_partial_file(tmp_path):
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25), audio=True)
    out = tmp_path / "out.mp4"
    done = subprocess.run(
        [sys.executable, "-c", _TERMINATE_AT_FRAME_8, str(src), "-o", str(out), *FAST, "-b", "2"],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=110,
    )
    err = done.stderr
    assert done.returncode == 143, err
    assert "Traceback" not in err and "terminated: partial output" in err, err
    assert not out.exists()
    got = probe(tmp_path / "out.partial.mp4")
    assert 8 <= got["frames"] < 300  # every frame through the network before the stop is kept
    assert f"{got['frames']} frames" in err
    assert got["audio"] is not None and 0 < got["audio"]["packets"] < probe(src)["audio"]["packets"]
    assert not list(tmp_path.glob(".out.part*")), "part files left"


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_the_next_run_removes_part_files_of_dead_runs_only(tmp_path, capsys):
    src = write_clip(tmp_path / "clip.mp4", frames=6, size=(96, 64))
    out = tmp_path / "clip.eigencam.mp4"
    dead, alive = _dead_pid(), os.getppid()  # pytest's parent (the shell) outlives the test
    left = [tmp_path / f".clip.eigencam.part{dead}.mp4",  # a killed sink's file
            tmp_path / f".clip.eigencam.part{dead}-k3x_9q"]  # a killed run's work folder
    left[0].write_bytes(b"\0" * 1000)
    left[1].mkdir()
    (left[1] / ".clip.eigencam.part1.mp4").write_bytes(b"\0" * 1000)
    kept = [tmp_path / f".clip.eigencam.part{alive}.mp4",  # a live process's: not ours to remove
            tmp_path / f".other.part{dead}.mp4"]  # another output's
    for path in kept:
        path.write_bytes(b"x")
    assert annotate_main([str(src), *FAST]) == 0
    err = capsys.readouterr().err
    assert "removed 2 part files left by runs that died" in err, err
    assert not any(p.exists() for p in left)
    assert all(p.read_bytes() == b"x" for p in kept)
    assert probe(out)["frames"] == 6
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == sorted(p.name for p in kept)  # and this run's own work folder is gone


# SIGTERM while the finished file is being closed (encoder flush, audio, rename): it is completed,
# and then the run stops (a second input would not be started).
_TERMINATE_WHILE_CLOSING = """
import os, signal, sys
from eigencam_live.video import VideoSink
close = VideoSink.close
def terminate_then_close(self, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return close(self, **kwargs)
VideoSink.close = terminate_then_close
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""


def _terminated_with_the_first_of_two_whole(tmp_path, script: str) -> str:
    """Run ``script`` (an annotate that sends itself SIGTERM) on two clips of 10 frames: it ends
    with 143, the first output whole with its sound and said finished, the second not started.
    Returns stderr."""
    first = write_clip(tmp_path / "a.mp4", frames=10, size=(96, 64), audio=True)
    second = write_clip(tmp_path / "b.mp4", frames=10, size=(96, 64))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", script, str(first), str(second), "-o", str(out), *FAST],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=110,
    )
    err = done.stderr
    assert done.returncode == 143, err
    assert "Traceback" not in err and "terminated: stopped after finishing" in err, err
    got = probe(out / "a.eigencam.mp4")
    assert got["frames"] == 10 and got["audio"]["packets"] == probe(first)["audio"]["packets"]  # whole, its sound too
    assert sorted(p.name for p in out.iterdir()) == ["a.eigencam.mp4"]  # b was not started
    return err


# SIGTERM right after the sink wrote the last of 10 frames; the writer then waits until the run
# has begun stopping (its threads still running), so the stop always finds the run alive.
_TERMINATE_AFTER_THE_LAST_FRAME = """
import os, signal, sys, threading
from eigencam_live.annotate import pipeline
from eigencam_live.video import VideoSink
write, wind_down, stopping = VideoSink.write, pipeline._wind_down, threading.Event()
def write_then_terminate(self, image, pts=None, duration=None):
    write(self, image, pts, duration)
    if self.frames_written == 10:
        os.kill(os.getpid(), signal.SIGTERM)
        stopping.wait(30)
def wind_down_seen(*args):
    stopping.set()
    return wind_down(*args)
VideoSink.write, pipeline._wind_down = write_then_terminate, wind_down_seen
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""


@pytest.mark.timeout(120)
def test_sigterm_after_the_last_frame_was_written_keeps_the_whole_file_under_its_name(tmp_path):
    """A re-trial: SIGTERM as the last of 60 frames was written named the file a part (all 60
    frames in it), and --skip-existing then annotated that video again."""
    err = _terminated_with_the_first_of_two_whole(tmp_path, _TERMINATE_AFTER_THE_LAST_FRAME)
    assert "partial" not in err, err


@pytest.mark.timeout(120)
def test_sigterm_while_the_output_is_finished_completes_it_and_stops(tmp_path):
    _terminated_with_the_first_of_two_whole(tmp_path, _TERMINATE_WHILE_CLOSING)


_STUCK_STAGE = """
import importlib, sys, threading, tomllib, torch

started = threading.Event()

def trace_for_ever():  # a stage given up on, still inside torch (a trace of minutes on a large batch)
    a = torch.randn(300, 300)
    while True:
        torch.jit.trace(lambda x: (x @ x).relu() @ x, a)
        started.set()

threading.Thread(target=trace_for_ever, name="annotate-infer", daemon=True).start()
started.wait()
module, function = tomllib.load(open("pyproject.toml", "rb"))["project"]["scripts"]["eigencam-live"].split(":")
getattr(importlib.import_module(module), function)(["annotate", "--bad-option"])  # the installed command
"""


def test_leaving_with_a_stage_still_in_torch_exits_with_the_code_not_an_abort(tmp_path):
    """A trial: Ctrl-C twice while a large batch's network was still being traced gave up on the
    stage (as it should) and then aborted at exit ("terminate called without an active exception",
    exit 134): the interpreter tore itself down under the thread running in torch. The command
    (``main.py``'s and the installed one, as ``pyproject.toml`` names it) leaves with its code."""
    done = subprocess.run([sys.executable, "-c", _STUCK_STAGE], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "unrecognized arguments: --bad-option" in done.stderr, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
