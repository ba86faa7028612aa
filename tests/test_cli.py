"""``main.py annotate``: one clear line and an exit code for every bad input; Ctrl-C leaves a
playable file; the headless path never imports Qt."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from eigencam_live.cli import annotate_main

from .conftest import scene
from .media import (
    NTSC,
    annotate_signalled_at_frame,
    probe,
    write_clip,
    write_empty,
    write_text_as_video,
    write_truncated,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("eigencam-live: error: ")
    return lines[0]


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", frames=12, size=(96, 64), rate=NTSC, audio=True)


def test_annotate_writes_a_playable_copy_with_audio_and_a_summary(tmp_path, clip, capsys):
    out = tmp_path / "result.mp4"
    threads = torch.get_num_threads()
    assert annotate_main([str(clip), "-o", str(out), "--stats", str(tmp_path / "s.csv"), *FAST]) == 0
    assert torch.get_num_threads() == threads  # the caller's setting is restored
    captured = capsys.readouterr()
    assert "12 frames in " in captured.out and str(out) in captured.out and "fps" in captured.out
    got, want = probe(out), probe(clip)
    assert (got["frames"], got["width"], got["height"], got["rate"]) == (12, 96, 64, Fraction(30000, 1001))
    assert got["audio"] == want["audio"]
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 13


def test_the_network_and_x264_share_the_cores(tmp_path):
    # options.headless_threads: half the cores to x264, which says in the file what it ran with
    # (a clip tall enough for x264 to use more than one thread: on its own it takes 2 on 2 cores).
    clip = write_clip(tmp_path / "tall.mp4", frames=3, size=(320, 240), rate=25)
    out = tmp_path / "out.mp4"
    assert annotate_main([str(clip), "-o", str(out), *FAST]) == 0
    cores = len(os.sched_getaffinity(0))
    assert re.search(rb" threads=(\d+) ", out.read_bytes()).group(1) == str(max(1, cores // 2)).encode()


def test_default_output_is_beside_the_input_and_force_is_needed_to_overwrite(tmp_path, clip, capsys):
    assert annotate_main([str(clip), *FAST]) == 0
    out = tmp_path / "clip.eigencam.mp4"
    assert probe(out)["frames"] == 12
    capsys.readouterr()
    assert annotate_main([str(clip), *FAST]) == 1
    assert "--force" in _one_error_line(capsys.readouterr().err)
    assert annotate_main([str(clip), "--force", *FAST]) == 0


def test_a_folder_of_videos_goes_to_an_output_folder(tmp_path, capsys):
    src = tmp_path / "videos"
    src.mkdir()
    write_clip(src / "a.mp4", frames=4)
    write_clip(src / "b.mov", frames=5)
    assert annotate_main([str(src), "-o", str(tmp_path / "out"), *FAST]) == 0
    assert probe(tmp_path / "out" / "a.eigencam.mp4")["frames"] == 4
    assert probe(tmp_path / "out" / "b.eigencam.mp4")["frames"] == 5


def _bad(tmp_path: Path, case: str, clip: Path) -> list[str]:
    if case == "missing":
        return [str(tmp_path / "nope.mp4")]
    if case == "empty-dir":
        (tmp_path / "empty").mkdir()
        return [str(tmp_path / "empty")]
    if case == "zero-bytes":
        return [str(write_empty(tmp_path / "zero.mp4"))]
    if case == "text":
        return [str(write_text_as_video(tmp_path / "text.mp4"))]
    if case == "model":
        return [str(clip), "--model", "resnet5"]
    if case == "layer":
        return [str(clip), "--layer", "features.99"]
    if case == "component-0":
        return [str(clip), "--component", "0"]
    if case == "component-negative":
        return [str(clip), "--component", "-2"]
    if case == "alpha-high":
        return [str(clip), "--alpha", "1.5"]
    if case == "alpha-negative":
        return [str(clip), "--alpha", "-0.1"]
    if case == "unwritable":
        (tmp_path / "blocker").write_text("a file, not a folder")
        return [str(clip), "-o", str(tmp_path / "blocker" / "sub") + "/"]
    if case == "same-as-input":
        return [str(clip), "-o", str(clip), "--force"]
    if case == "webcam":
        return ["7"]
    if case == "heatmaps-txt":  # a trial: an NPZ archive was written under this name
        return [str(clip), "--heatmaps", str(tmp_path / "h.txt")]
    raise AssertionError(case)


BAD = {
    "missing": "no such file",
    "empty-dir": "no videos",
    "zero-bytes": "empty",
    "text": "cannot open",
    "model": "unknown model",
    "layer": "no layer named",
    "component-0": "--component",
    "component-negative": "--component",
    "alpha-high": "--alpha",
    "alpha-negative": "--alpha",
    "unwritable": "cannot create output folder",
    "same-as-input": "is the input",
    "webcam": "no such file: 7 (a number names a webcam in the app; annotate takes video and image files)",
    "heatmaps-txt": "--heatmaps writes a numpy .npz archive: name an .npz file",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_line_and_a_nonzero_exit(tmp_path, clip, capsys, case):
    before = {p.name for p in tmp_path.iterdir()}
    capsys.readouterr()
    code = annotate_main([*FAST, *_bad(tmp_path, case, clip)])  # the bad option comes last and wins
    assert code == 1
    assert BAD[case] in _one_error_line(capsys.readouterr().err)
    assert probe(clip)["frames"] == 12  # the input is untouched
    left = {p.name for p in tmp_path.iterdir()} - before - {"empty", "blocker", "zero.mp4", "text.mp4"}
    assert not left, f"left behind: {left}"


def test_more_threads_than_cores_is_said(tmp_path, clip, capsys):
    """A trial: --threads 999 ran 4x slower than the default, and nothing was said."""
    from eigencam_live.options import cpu_cores

    many = cpu_cores() + 1
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), *FAST, "--threads", str(many), "-q"]) == 0
    assert f"note: --threads {many} is more than this machine's {many - 1} CPU cores" in capsys.readouterr().err
    assert probe(tmp_path / "out.mp4")["frames"] == 12


def test_unwritable_folder_is_refused_when_not_root(tmp_path, clip, capsys):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert annotate_main([str(clip), "-o", str(locked / "out.mp4"), *FAST]) == 1
        assert "cannot write" in _one_error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_a_cut_off_video_is_annotated_with_a_warning_and_kept(tmp_path, capsys):
    src = write_truncated(tmp_path / "cut.mp4", frames=40, keep=0.5)
    (tmp_path / "cut.eigencam.partial.mp4").write_bytes(b"a longer part (a re-trial: taken as done with)")
    assert annotate_main([str(src), *FAST]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "eigencam-live: warning:" in err and "cut off" in err
    assert 0 < probe(tmp_path / "cut.eigencam.mp4")["frames"] < 40
    assert "whole" not in err  # nor is the output whole, with parts beside it


def test_usage_errors_exit_2_with_one_line(capsys):
    assert annotate_main([]) == 2
    assert annotate_main(["x.mp4", "--component", "one"]) == 2
    assert annotate_main(["x.mp4", "--view", "nope"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("eigencam-live annotate: error: ") for line in lines)
    assert "invalid choice: 'nope'" in lines[2] and lines[2].endswith("(see --help)")


def test_missing_imagenet_weights_fall_back_with_a_plain_warning(tmp_path, clip, capsys):
    from eigencam_live.models import cached_weights_path

    if cached_weights_path("mobilenet_v3_small").exists():
        pytest.skip("ImageNet weights are cached here: no fallback to test")
    args = [a for a in FAST if a not in ("--weights", "none")]
    assert annotate_main([str(clip), *args]) == 0
    err = capsys.readouterr().err
    assert "eigencam-live: warning: UNTRAINED network" in err and "Traceback" not in err


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    return env


# Ctrl-C, sent by the process to itself right after the sink wrote frame 8 of 300: the input cannot
# be finished before the signal is handled, and no test sleeps to win a race.
_INTERRUPT_AT_FRAME_8 = annotate_signalled_at_frame(8, "SIGINT")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ctrl_c_leaves_a_playable_partial_file(tmp_path, capsys):
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25), audio=True)
    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_FRAME_8, str(src), "-o", str(out), *FAST, "-b", "2"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110,
    )
    err = done.stderr
    assert done.returncode == 130, err
    assert "Traceback" not in err and "partial output" in err
    part = tmp_path / "out.partial.mp4"  # the part is never taken for the whole output
    assert not out.exists() and f"written to {part}" in err
    got = probe(part)
    assert 8 <= got["frames"] < 300  # every frame through the network before the stop is kept
    assert f"{got['frames']} frames" in err
    assert got["audio"] is not None and got["audio"]["packets"] > 0
    assert got["audio"]["packets"] < probe(src)["audio"]["packets"]  # the audio is cut with the video
    assert not list(tmp_path.glob(".out.part*"))
    assert time.monotonic() - t0 < 100

    # --skip-existing annotates the stopped video whole; the parts beside it are named (a trial found
    # them left to pile up in silence), never removed: a name says nothing of who wrote a file (the
    # next trial's own notes, named stats.partial.csv, were removed)
    others = [tmp_path / n for n in ("out.partial.mp4.txt", "outer.partial.mp4", "out.partial.mkv", "out.partial-x.mp4")]
    for path in [tmp_path / "out.partial-3.mp4", tmp_path / "out.partial.csv", *others]:
        path.write_bytes(b"x")
    first_part = part.read_bytes()
    assert annotate_main([str(src), "-o", str(out), *FAST, "-b", "2", "--skip-existing",
                          "--stats", str(tmp_path / "out.csv")]) == 0
    assert probe(out)["frames"] == 300 and part.read_bytes() == first_part
    assert (tmp_path / "out.partial-3.mp4").read_bytes() == (tmp_path / "out.partial.csv").read_bytes() == b"x"
    assert ("out.mp4 is whole now; files named as the parts of stopped runs are beside it (left as they are: "
            "delete them when no longer needed): out.partial-3.mp4, out.partial.mp4, out.partial.csv"
            ) in capsys.readouterr().err
    for path in [tmp_path / "out.partial-3.mp4", tmp_path / "out.partial.csv", *others]:
        path.unlink()

    # --force over that output, stopped again: the whole file there stays; the part goes beside it
    whole = out.read_bytes()
    stats = tmp_path / "out.csv"
    stats.write_text("a whole run's table\n")
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_FRAME_8, str(src), "-o", str(out), *FAST, "-b", "2", "--force",
         "--stats", str(stats), "--heatmaps", str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110,
    )
    assert done.returncode == 130 and out.read_bytes() == whole
    assert stats.read_text() == "a whole run's table\n" and (tmp_path / "out.partial.csv").is_file()
    # a table the whole file had none of goes with the part too (it was out.npz, beside the whole file)
    assert (tmp_path / "out.partial.npz").is_file() and not (tmp_path / "out.npz").exists()
    assert f"written to {tmp_path / 'out.partial-2.mp4'}" in done.stderr and f"{out} is kept as it was" in done.stderr
    assert 8 <= probe(tmp_path / "out.partial-2.mp4")["frames"] < 300


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ctrl_c_twice_still_leaves_the_part(tmp_path):
    """A trial: Ctrl-C pressed twice (the second while the frames still in the network were being
    written) removed what was written: 'stopped; no output was finished'. The second stops the
    wait for those frames; the part is finished with the frames written so far."""
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25), audio=True)
    out = tmp_path / "out.mp4"
    done = subprocess.run(
        [sys.executable, "-c", annotate_signalled_at_frame(8, "SIGINT", again_when_stopping=True), str(src),
         "-o", str(out), *FAST, "-b", "2", "--stats", str(tmp_path / "out.csv")],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110,
    )
    err = done.stderr
    assert done.returncode == 130, err
    assert "Traceback" not in err and "no output was finished" not in err
    part = tmp_path / "out.partial.mp4"
    assert not out.exists() and f"written to {part}" in err
    frames = probe(part)["frames"]
    assert 8 <= frames < 300 and f"{frames} frames" in err
    assert len((tmp_path / "out.partial.csv").read_text().splitlines()) == frames + 1  # a header, a row a frame
    assert not list(tmp_path.glob(".out.part*"))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_while_a_library_run_winds_down_ends_the_process_with_the_part_and_its_table(tmp_path):
    """The review: annotate_file used as a library (SIGTERM's default action), Ctrl-C then SIGTERM
    while it wound down: the process ended before the table was written and the work folder
    removed. The signals are held until all is done; then SIGTERM ends the process."""
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25))
    code = f"""
import os, signal
from pathlib import Path
from eigencam_live.annotate import Job, annotate_file
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.video import Capture, VideoSink
write, stop = VideoSink.write, Capture.stop
def write_then_signal(self, image, pts=None, duration=None):
    write(self, image, pts, duration)
    if self.frames_written == 8:
        os.kill(os.getpid(), signal.SIGINT)
def stop_and_terminate(self, timeout=1.0):
    if not getattr(Capture, "signalled", False):
        Capture.signalled = True
        os.kill(os.getpid(), signal.SIGTERM)
    stop(self, timeout)
VideoSink.write, Capture.stop = write_then_signal, stop_and_terminate
engine = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu"))
annotate_file(engine, Job(Path({str(src)!r}), Path({str(tmp_path / "out.mp4")!r}), Path({str(tmp_path / "out.csv")!r})),
              batch_size=2, progress=False)
print("not reached: SIGTERM ends the process")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                          timeout=110)
    assert done.returncode == -signal.SIGTERM and "not reached" not in done.stdout, done.stderr
    frames = probe(tmp_path / "out.partial.mp4")["frames"]
    assert 8 <= frames < 300
    assert len((tmp_path / "out.partial.csv").read_text().splitlines()) == frames + 1
    assert not list(tmp_path.glob(".out.part*")) and not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_signal_after_the_stop_was_said_is_the_same_stop(tmp_path):
    """A re-trial: SIGTERM, then Ctrl-C as the run ended: 'terminated: partial output ...' then a
    second line ('interrupted') and exit 130. The stop said first is the one: one line, 143."""
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25))
    code = """
import os, signal, eigencam_live.cli as cli
say = cli._say
def say_then_signal(kind, message):
    say(kind, message)
    if "partial output" in message:
        os.kill(os.getpid(), signal.SIGINT)
cli._say = say_then_signal
""" + annotate_signalled_at_frame(8, "SIGTERM")
    done = subprocess.run([sys.executable, "-c", code, str(src), "-o", str(tmp_path / "out.mp4"), *FAST, "-b", "2"],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110)
    lines = [line for line in done.stderr.splitlines() if line.startswith("eigencam-live:")]
    assert done.returncode == 143 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("eigencam-live: terminated: partial output"), lines
    assert probe(tmp_path / "out.partial.mp4")["frames"] >= 8


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ctrl_c_a_third_time_ends_a_run_whose_network_hangs(tmp_path):
    """The review: the stop signals are held while a run lasts, and a stage stuck in a hung device
    or disk (here the network's second batch never returns) held the process for ever: Ctrl-C and
    SIGTERM did nothing. Ctrl-C once stops the run, twice stops the wait for the network, and a
    third time, while a stage stays stuck, gives the part up: the process ends, leaving no files."""
    src = write_clip(tmp_path / "long.mp4", frames=300, size=(96, 64), rate=Fraction(25))
    code = """
import os, signal, sys, threading
from eigencam_live.annotate import pipeline
from eigencam_live.engine import Engine
from eigencam_live.video import Capture
pipes, submit, stop, start = [], Engine.submit, Capture.stop, pipeline._Pipeline.start
def start_and_keep(self):
    pipes.append(self)
    start(self)
def hanging_submit(self, *args, **kwargs):
    if getattr(Engine, "submitted", 0) == 1:  # the second batch: Ctrl-C, and again once aborted
        os.kill(os.getpid(), signal.SIGINT)
        pipes[0].abort.wait()
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait()  # a hung device: never returns
    Engine.submitted = getattr(Engine, "submitted", 0) + 1
    return submit(self, *args, **kwargs)
def stop_and_signal(self, timeout=1.0):  # Ctrl-C again as the run starts stopping
    if not getattr(Capture, "signalled", False):
        Capture.signalled = True
        os.kill(os.getpid(), signal.SIGINT)
    stop(self, timeout)
pipeline._Pipeline.start, Engine.submit, Capture.stop = start_and_keep, hanging_submit, stop_and_signal
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""
    done = subprocess.run([sys.executable, "-c", code, str(src), "-o", str(tmp_path / "out.mp4"), *FAST, "-b", "2"],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert "eigencam-live: interrupted: stopped; no output was finished" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ctrl_c_while_a_video_fails_stops_the_run_of_several(tmp_path):
    """The review: Ctrl-C while a video of several failed was dropped with the failed run, and the
    next video was started. The error is said, then the stop, and no other video is begun."""
    for name in ("a.mp4", "b.mp4"):
        write_clip(tmp_path / name, frames=60, size=(96, 64), rate=Fraction(25))
    code = """
import os, signal, sys
from eigencam_live.engine import Engine
from eigencam_live.errors import SourceError
submit = Engine.submit
def failing_submit(self, *args, **kwargs):
    if getattr(Engine, "submitted", 0) == 1:  # the second batch: Ctrl-C, then the network fails
        os.kill(os.getpid(), signal.SIGINT)
        raise SourceError("a failure in the network's stage")
    Engine.submitted = getattr(Engine, "submitted", 0) + 1
    return submit(self, *args, **kwargs)
Engine.submit = failing_submit
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out),
                           *FAST, "-b", "2"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=110)
    lines = [line for line in done.stderr.splitlines() if line.startswith("eigencam-live:")]
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert lines == [f"eigencam-live: error: {tmp_path / 'a.mp4'}: a failure in the network's stage",
                     "eigencam-live: interrupted: stopped before 1 more video"], lines
    assert list(out.iterdir()) == []


@pytest.mark.timeout(120)
def test_a_whole_run_never_takes_its_own_inputs_or_tables_for_parts(tmp_path, capsys):
    """The review: a whole run removed the files named as the parts of its output, its own input
    (rec.partial.mp4 -o rec.mp4) and another input's table (s.x.partial.csv) among them. Parts are
    now only named, and never the run's own files."""
    rec = write_clip(tmp_path / "rec.partial.mp4", frames=3)
    assert annotate_main([str(rec), "-o", str(tmp_path / "rec.mp4"), *FAST]) == 0
    assert probe(rec)["frames"] == 3 and "parts" not in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    write_clip(tmp_path / "x.partial.mp4", frames=3)
    write_clip(tmp_path / "x.mp4", frames=4)
    assert annotate_main([str(tmp_path / "x.partial.mp4"), str(tmp_path / "x.mp4"), "-o", str(tmp_path / "out"),
                          "--stats", str(tmp_path / "s.csv"), *FAST]) == 0
    assert probe(tmp_path / "x.partial.mp4")["frames"] == 3
    assert len((tmp_path / "s.x.partial.csv").read_text().splitlines()) == 4  # its header and 3 rows
    assert len((tmp_path / "s.x.csv").read_text().splitlines()) == 5
    assert "parts" not in capsys.readouterr().err



@pytest.mark.parametrize("where", ["_annotate_all", "_run_and_report"])
def test_a_stop_as_the_run_ends_says_what_was_finished(tmp_path, capsys, monkeypatch, where):
    """A trial: Ctrl-C as the last video was being reported ended the process with 130 and
    nothing said, all of it written; between two videos it said "no output was finished"."""
    import eigencam_live.cli as cli

    clips = [write_clip(tmp_path / f"{n}.mp4", frames=4) for n in ("a", "b")]
    done = getattr(cli, where)

    def then_ctrl_c(*args, **kwargs):
        done(*args, **kwargs)
        raise KeyboardInterrupt  # as Ctrl-C's handler raises it, there

    monkeypatch.setattr(cli, where, then_ctrl_c)
    assert annotate_main([str(clips[0]), "-o", str(tmp_path / "one.mp4"), *FAST]) == 130
    assert (f"interrupted: stopped after finishing {tmp_path / 'one.mp4'} (complete)"
            in capsys.readouterr().err)
    assert probe(tmp_path / "one.mp4")["frames"] == 4
    assert annotate_main([*map(str, clips), "-o", str(tmp_path / "out"), *FAST]) == 130
    assert (f"stopped after finishing 2 outputs, each complete (the last: {tmp_path / 'out' / 'b.eigencam.mp4'})"
            in capsys.readouterr().err)


def test_an_empty_output_or_table_name_is_refused(tmp_path, clip, capsys, monkeypatch):
    """A trial: -o "" wrote into the working folder, as if it named it."""
    monkeypatch.chdir(tmp_path)
    for flag, said in (("-o", "--output is empty: name a file or a folder"), ("--stats", "--stats is empty: name a file"),
                       ("--heatmaps", "--heatmaps is empty"), ("--detections", "--detections is empty")):
        assert annotate_main([str(clip), flag, " " if flag == "--stats" else "", *FAST]) == 1
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # nothing written


def test_a_table_named_as_another_kind_of_file_is_refused(tmp_path, clip, capsys):
    """A trial: --stats x.npz wrote a CSV under that name (--heatmaps x.csv was refused)."""
    for flag, name, said in (("--stats", "x.npz", "--stats writes a CSV table: name a .csv file"),
                             ("--detections", "d.csv", "--detections writes a JSON Lines file: name a .jsonl file"),
                             ("--heatmaps", "h.txt", "--heatmaps writes a numpy .npz archive: name an .npz file")):
        assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), flag, str(tmp_path / name), *FAST]) == 1
        assert capsys.readouterr().err.strip() == f"eigencam-live: error: {said}. Got {tmp_path / name}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # nothing written
    # a name of no known kind is the user's to choose
    assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--stats", str(tmp_path / "s.txt"), *FAST]) == 0
    assert (tmp_path / "s.txt").read_text().startswith("index,")


def test_options_that_do_not_apply_are_said_unused(tmp_path, clip, capsys):
    """A trial: --no-optimize under ONNX Runtime, and --image-format beside an -o naming another
    format, were taken without a word."""
    import cv2
    import numpy as np

    assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--no-optimize", "--backend", "onnxruntime",
                          *FAST]) == 0
    assert ("note: --no-optimize: for --backend torch on the CPU (its traced copy); onnxruntime on cpu runs this "
            "network, so it is not used") in capsys.readouterr().err
    mine = ["-m", "shufflenet_v2_x0_5", *FAST[2:]]  # torch, but a family without a traced copy (a review)
    assert annotate_main([str(clip), "-o", str(tmp_path / "s.mp4"), "--no-optimize", "--backend", "torch", *mine]) == 0
    assert ("note: --no-optimize: for --backend torch on the CPU (its traced copy); shufflenet_v2_x0_5 has no traced "
            "copy, so it is not used") in capsys.readouterr().err
    assert annotate_main([str(clip), "-o", str(tmp_path / "t.mp4"), "--no-optimize", "--backend", "torch", *FAST]) == 0
    assert "--no-optimize" not in capsys.readouterr().err  # mobilenet's family has one: used
    cv2.imwrite(str(tmp_path / "cat.jpg"), np.full((48, 64, 3), 90, np.uint8))
    assert annotate_main([str(tmp_path / "cat.jpg"), "-o", str(tmp_path / "cat.webp"), "--image-format", "png",
                          *FAST]) == 0
    assert ("note: --image-format png is not used for cat.webp: -o names that file, and its extension is its format"
            in capsys.readouterr().err)
    for out, fmt in (("a.jpeg", "jpg"), ("b.png", "png")):  # the same format: nothing to say
        assert annotate_main([str(tmp_path / "cat.jpg"), "-o", str(tmp_path / out), "--image-format", fmt, *FAST]) == 0
        assert "image-format" not in capsys.readouterr().err


def test_box_options_for_a_classifier_are_said_unused(tmp_path, clip, capsys):
    """A trial: --in-boxes with a classifier was taken without a word (--detections is refused)."""
    assert annotate_main([str(clip), "-o", str(tmp_path / "o.mp4"), "--in-boxes", "--score", "0.3", *FAST]) == 0
    assert ("note: --score, --in-boxes: for a detector's boxes; mobilenet_v3_small gives none, so they are not used"
            in capsys.readouterr().err)
    # the default's value typed is typed too (it was told apart by its value only)
    assert annotate_main([str(clip), "-o", str(tmp_path / "q.mp4"), "--sco=0.5", *FAST]) == 0
    assert "note: --score: for a detector's boxes; mobilenet_v3_small gives none, so it is not used" in capsys.readouterr().err
    assert annotate_main([str(clip), "-o", str(tmp_path / "p.mp4"), "--stats", str(tmp_path / "p.csv"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "boxes" not in err and "nothing" not in err  # (a review: a video-only run said its tables were not written)


def test_double_dash_ends_the_options(tmp_path, capsys, monkeypatch):
    """A trial: `annotate -- -dash.mp4` said "unrecognized arguments: -dash.mp4"."""
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "-dash.mp4", frames=3)
    assert annotate_main([*FAST, "--", "-dash.mp4"]) == 0
    assert probe(tmp_path / "-dash.eigencam.mp4")["frames"] == 3
    assert annotate_main([*FAST, "--", "-o"]) == 1  # after it, every word is an input
    assert "no such file: -o" in capsys.readouterr().err


def test_skip_existing_says_which_outputs_it_kept_are_not_whole(tmp_path, capsys):
    """A trial: a --max-frames run's output takes the output's name, and a later --skip-existing
    skipped it as done without a word. It is still skipped (never written over without --force),
    and now said, as is an output that is no video at all; a whole output is skipped quietly."""
    for name, frames in (("a", 30), ("b", 12), ("c", 12)):
        write_clip(tmp_path / f"{name}.mp4", frames=frames)
    out = tmp_path / "out"
    assert annotate_main([str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out), "--max-frames", "10",
                          *FAST]) == 0
    assert probe(out / "a.eigencam.mp4")["frames"] == 10 and probe(out / "b.eigencam.mp4")["frames"] == 10
    (out / "c.eigencam.mp4").write_bytes(b"not a video")
    assert annotate_main([str(tmp_path / "a.mp4"), "-o", str(out / "whole.mp4"), *FAST]) == 0
    capsys.readouterr()
    kept = {p.name: p.read_bytes() for p in out.iterdir()}
    assert annotate_main([str(tmp_path / n) for n in ("a.mp4", "b.mp4", "c.mp4")] + ["-o", str(out), "--skip-existing",
                                                                                   *FAST]) == 0
    err = capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept  # nothing written over
    assert "3 inputs skipped" in err
    assert (f"warning: {out / 'a.eigencam.mp4'} holds 10 of the 30 frames of {tmp_path / 'a.mp4'} (a --max-frames "
            "run, or a damaged input?), and was skipped as done: delete it to annotate the video again") in err
    # 10 of 12 is within the allowance for containers' rounding of their frame counts (2 frames)
    assert "b.eigencam.mp4" not in err
    # the same --max-frames asked again: the output is what this run would write (a re-trial)
    assert annotate_main([str(tmp_path / "a.mp4"), "-o", str(out), "--skip-existing", "--max-frames", "10", *FAST]) == 0
    assert "warning" not in capsys.readouterr().err
    assert f"{out / 'c.eigencam.mp4'} cannot be read as a video, and was skipped as done" in err
    assert annotate_main([str(tmp_path / "a.mp4"), "-o", str(out / "whole.mp4"), "--skip-existing", *FAST]) == 0
    assert "warning" not in capsys.readouterr().err  # whole: skipped quietly
    # every input skipped: the tables asked for are not written, and that is said (it was not)
    assert annotate_main([str(tmp_path / "a.mp4"), "-o", str(out / "whole.mp4"), "--skip-existing",
                          "--stats", str(tmp_path / "new.csv"), *FAST]) == 0
    assert f"nothing left to annotate, so nothing was written to --stats {tmp_path / 'new.csv'}" in capsys.readouterr().err
    assert not (tmp_path / "new.csv").exists()

@pytest.mark.timeout(120)
def test_the_annotate_path_never_imports_qt(tmp_path):
    src = write_clip(tmp_path / "a.mp4", frames=3)
    code = (
        "import sys; from eigencam_live.cli import annotate_main; "
        f"rc = annotate_main([{str(src)!r}, '-m', 'mobilenet_v3_small', '--weights', 'none', '--short-side', '64', '-q']); "
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PyQt5', 'PyQt6', 'PySide2', 'PySide6')); "
        "print(rc, qt)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                          timeout=110)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr


@pytest.mark.parametrize(("argv", "mean", "std", "inputs"), [
    (["--mean", "0.5", "0.4", "0.3", "a.mp4", "b.mp4"], (0.5, 0.4, 0.3), None, ["a.mp4", "b.mp4"]),
    (["a.mp4", "--mean", "0.5", "--std", "0.25", "b.png"], (0.5,), (0.25,), ["a.mp4", "b.png"]),
    (["--std=0.2,0.2,0.2", "--mea", "0.1", "0.2", "0.3", "c.mp4"], (0.1, 0.2, 0.3), (0.2, 0.2, 0.2), ["c.mp4"]),
    (["--mean", "0.5", "--", "0.7"], (0.5,), None, ["0.7"]),  # after --, a file named 0.7
    (["--mean=0.5", "0.4", "0.3", "d.mp4", "--std=0.2"], (0.5, 0.4, 0.3), (0.2,), ["d.mp4"]),  # ('no such file: 0.4')
    (["--mean=0.5,0.4,0.3", "2023"], (0.5, 0.4, 0.3), None, ["2023"]),  # a folder named 2023 is no fourth number
])
def test_mean_and_std_take_one_number_or_three_and_leave_the_inputs_after_them(argv, mean, std, inputs):
    """One number (a grey network) or three: argparse's nargs='+' would also have taken the inputs."""
    from eigencam_live.cli import build_parser

    args = build_parser().parse_intermixed_args(argv)  # as annotate_main: inputs before and after options
    assert (args.mean, args.std, args.inputs) == (mean, std, inputs)


@pytest.mark.parametrize(("argv", "said"), [
    (["--mean", "0.5", "0.4", "0.3", "0.2", "clip.mp4"], "--mean takes one number or three (R G B), got 4: 0.5 0.4 0.3 0.2"),
    (["a.mp4", "--std=1", "2", "3", "4", "5"], "--std takes one number or three (R G B), got 5: 1 2 3 4 5"),
])
def test_more_than_three_numbers_are_refused_by_count_not_taken_for_an_input(argv, said, capsys):
    """The fourth number used to be taken for an input and refused as 'no such file: 0.2'."""
    from eigencam_live.cli import build_parser

    with pytest.raises(SystemExit) as stop:
        build_parser().parse_intermixed_args(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert said in err


def test_a_network_that_runs_at_one_size_only_is_fed_that_size_and_says_so(tmp_path, monkeypatch, capsys):
    """A Linear layer sized for one map: before, every 16:9 frame failed with torch's 'mat1 and mat2
    shapes cannot be multiplied'. It runs at the layer probe's 224x224, and a warning says so."""
    (tmp_path / "fixed.py").write_text(
        "import torch\n"
        "class Fixed(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU(), torch.nn.MaxPool2d(8))\n"
        "        self.fc = torch.nn.Linear(8 * 7 * 7, 5)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.features(x).flatten(1))\n"
        "def build():\n"
        "    return Fixed()\n"
        "def told():\n"
        "    net = Fixed()\n"
        "    net.input_size = (224, 224)\n"
        "    return net\n")
    monkeypatch.chdir(tmp_path)
    from eigencam_live.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(model="fixed:build", device="cpu"))
    assert engine.loaded.spec.fixed_input == (224, 224) and "runs at 224x224 only" in engine.loaded.note
    result = engine.process_one(scene(180, 320))
    assert engine.input_size() == (224, 224) and result.cam.shape == (7, 7) and len(result.predictions) == 5
    told = Engine(EngineConfig(model="fixed:told", device="cpu"))
    assert told.loaded.note is None and told.loaded.spec.fixed_input == (224, 224)

    clip = write_clip(tmp_path / "in.mp4", frames=3, size=(160, 90))
    assert annotate_main([str(clip), "-o", "out.mp4", "--model", "fixed:build", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: fixed:build runs at 224x224 only (at 384x224: RuntimeError: mat1 and mat2" in err
    assert "set input_size = (224, 224) on the module" in err and probe(tmp_path / "out.mp4")["frames"] == 3


def test_a_blank_line_in_a_labels_file_keeps_its_place_named_by_its_index(tmp_path):
    from eigencam_live.config import read_labels

    path = tmp_path / "labels.txt"
    path.write_text("cat\n\n  dog \n\n\n", encoding="utf-8")
    assert read_labels(str(path)) == ["cat", "1", "dog"]  # an empty name showed nothing


@pytest.mark.timeout(180)
def test_a_closed_pipe_on_stdout_and_stderr_loses_no_work(tmp_path):
    """`annotate ... 2>&1 | head -c 60`: the first log line after the reader went raised
    BrokenPipeError, with a traceback, and the other inputs were left undone (exit 1, or 0 with an
    output missing). Each input is annotated and the exit code is the run's."""
    clips = [write_clip(tmp_path / f"{name}.mp4", frames=3) for name in "abc"]
    run = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "annotate", *map(str, clips), "-o", str(tmp_path / "out"),
                            *FAST[:-1]],  # with the progress bar
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path)
    run.stdout.close()  # the reader is gone before the first line
    run.stderr.close()
    assert run.wait(timeout=170) == 0
    for name in "abc":
        assert probe(tmp_path / "out" / f"{name}.eigencam.mp4")["frames"] == 3
    # --list-layers of both front ends too (`| head`: a traceback, exit 1), a listing shorter than
    # stdout's buffer (flushed at exit, after the guard was gone: exit 120)
    env = {k: v for k, v in _env().items() if k != "PYTHONUNBUFFERED"}
    for front in ([], ["annotate"]):
        listing = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *front, "--list-layers", "-m", "resnet18",
                                    "--weights", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        listing.stdout.close()
        assert listing.wait(timeout=120) == 0, listing.stderr.read()
        assert listing.stderr.read() == b""
