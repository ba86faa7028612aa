"""The headless pipeline: file in, annotated H.264 out, same rate, size, frames and audio."""

from __future__ import annotations

import csv
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from eigencam_live.annotate import Job, annotate_file, expand_inputs, plan_jobs
from eigencam_live.annotate.outputs import Tables
from eigencam_live.annotate.pipeline import _Pipeline
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, SinkError, SourceError
from eigencam_live.render import RenderConfig
from eigencam_live.video import Capture, VideoSink, open_source

from .media import NTSC, pattern, probe, write_clip, write_truncated


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu"))


def test_annotated_file_keeps_frames_rate_size_and_audio(tmp_path, engine):
    src = write_clip(tmp_path / "in.mp4", frames=30, size=(96, 64), rate=NTSC, audio=True)
    job = Job(src, tmp_path / "out.mp4", tmp_path / "stats.csv", tmp_path / "maps.npz")
    result = annotate_file(engine, job, batch_size=4, progress=False)
    assert (result.frames, result.interrupted, result.warning, result.audio) == (30, False, None, True)
    got, want = probe(job.output), probe(src)
    assert (got["width"], got["height"], got["frames"]) == (96, 64, 30)
    assert got["rate"] == Fraction(30000, 1001)
    assert got["pts"] == pytest.approx(want["pts"], abs=1e-4)
    assert got["audio"] == want["audio"]
    assert got["codec"] == "h264" and got["pix_fmt"] == "yuv420p"

    rows = list(csv.DictReader(job.stats.open()))
    assert [int(r["index"]) for r in rows] == list(range(30))
    assert float(rows[3]["pts"]) == pytest.approx(3 * 1001 / 30000, abs=1e-5)
    assert all(0 <= float(r["probability"]) <= 1 and 0 <= float(r["explained"]) <= 1 for r in rows)
    assert all(0 <= int(r["peak_x"]) < 96 and 0 <= int(r["peak_y"]) < 64 for r in rows)
    assert rows[0]["label"]

    maps = np.load(job.heatmaps)
    assert maps["maps"].dtype == np.float16 and maps["maps"].shape[0] == 30 and maps["maps"].ndim == 3
    assert maps["pts"] == pytest.approx(want["pts"], abs=1e-4)
    assert float(maps["maps"].max()) <= 1.0 and float(maps["maps"].min()) >= 0.0


def test_annotation_changes_the_picture_and_side_by_side_doubles_width(tmp_path, engine):
    src = write_clip(tmp_path / "in.mp4", frames=6, size=(96, 64))
    job = Job(src, tmp_path / "sbs.mp4")
    result = annotate_file(engine, job, RenderConfig(view="side-by-side", alpha=0.6), progress=False)
    got = probe(job.output)
    assert result.frames == 6 and (got["width"], got["height"]) == (192, 64)
    with av.open(str(job.output)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="bgr24").astype(np.int16)
    left, right = first[:, :96], first[:, 96:]
    assert np.abs(left - pattern(0, 96, 64)).mean() < 12  # the frame, through x264
    assert np.abs(right - left).mean() > 20  # the heatmap drawn over it


def test_a_cut_off_file_is_annotated_as_far_as_it_decodes(tmp_path, engine):
    src = write_truncated(tmp_path / "cut.mp4", frames=40, keep=0.5)
    job = Job(src, tmp_path / "out.mp4")
    result = annotate_file(engine, job, progress=False)
    assert 0 < result.frames < 40 and "cut off" in result.warning
    assert probe(job.output)["frames"] == result.frames


def test_an_engine_error_removes_the_unfinished_output(tmp_path, engine):
    src = write_clip(tmp_path / "in.mp4", frames=8, size=(96, 64))
    bad = Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, component=50, device="cpu"),
                 model=engine.loaded)
    with pytest.raises(ConfigError, match="component: 50 is beyond the rank"):
        annotate_file(bad, Job(src, tmp_path / "out.mp4"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


class _HeldNetwork:
    """The engine, with its network held on the first batch until ``go`` is set, and ``full`` set
    when the 4th batch is being prepared: the network then holds batch 1, batches 2 and 3 wait in
    the prepared queue, and batch 4 cannot be put there."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.go, self.full = engine, threading.Event(), threading.Event()
        self.prepared = self.submitted = 0

    def prepare(self, frames):
        self.prepared += 1
        if self.prepared == 4:
            self.full.set()
        return self.engine.prepare(frames)

    def submit(self, ahead, look):
        self.submitted += 1
        assert self.go.wait(30)
        return self.engine.submit(ahead, look)


def test_a_soft_stop_with_batches_waiting_ends_at_once_and_writes_what_the_network_ran(tmp_path, engine):
    """Ctrl-C while the prepare thread waits for room: every thread ends, nothing is aborted, and
    the output holds exactly the batch the network was running."""
    src = write_clip(tmp_path / "in.mp4", frames=40, size=(96, 64))
    held = _HeldNetwork(engine)
    capture = Capture(open_source(str(src)))
    sink = VideoSink(tmp_path / "out.mp4", width=96, height=64, fps=25)
    pipe = _Pipeline(held, capture, sink, RenderConfig(), 2, Tables(None, None))
    pipe.start()
    assert held.full.wait(30)
    pipe.soft_stop.set()
    held.go.set()
    pipe.join(20.0)
    capture.stop()
    assert not pipe.alive() and not pipe.abort.is_set() and pipe.error is None
    assert (held.submitted, pipe.written) == (1, 2)
    sink.close()
    assert probe(tmp_path / "out.mp4")["frames"] == 2


class _StalledCapture:
    """The first frames of a real capture, then a source that stalls (a network stream that stopped
    sending): ``read`` times out until ``close``."""

    def __init__(self, frames: list) -> None:
        self.frames, self.closed = list(frames), threading.Event()

    def start(self) -> None:
        pass

    def read(self, timeout: float):
        if self.frames:
            return self.frames.pop(0)
        if self.closed.wait(timeout):
            return None
        raise TimeoutError


def test_a_soft_stop_while_the_input_stalls_ends_at_once_and_writes_every_batch_run(tmp_path, engine):
    """Ctrl-C while nothing is queued for the network (the prepare thread waits for frames): every
    thread ends without an abort, and each batch the network ran is written."""
    src = write_clip(tmp_path / "in.mp4", frames=4, size=(96, 64))
    with Capture(open_source(str(src))) as real:
        frames = list(real)

    class Counted:
        def __init__(self) -> None:
            self.ran = threading.Event()
            self.submitted = 0

        def prepare(self, batch):
            return engine.prepare(batch)

        def submit(self, ahead, look):
            pending = engine.submit(ahead, look)
            self.submitted += 1
            if self.submitted == 2:
                self.ran.set()
            return pending

    capture, counted = _StalledCapture(frames), Counted()
    sink = VideoSink(tmp_path / "out.mp4", width=96, height=64, fps=25)
    pipe = _Pipeline(counted, capture, sink, RenderConfig(), 2, Tables(None, None))
    pipe.start()
    assert counted.ran.wait(30)  # both batches went through the network; the input now stalls
    pipe.soft_stop.set()
    pipe.join(20.0)
    capture.closed.set()
    assert not pipe.alive() and not pipe.abort.is_set() and pipe.error is None
    assert pipe.written == 4
    sink.close()
    assert probe(tmp_path / "out.mp4")["frames"] == 4


def test_inputs_expand_from_files_folders_and_globs(tmp_path):
    a = write_clip(tmp_path / "a.mp4", frames=2)
    b = write_clip(tmp_path / "b.mkv", frames=2)
    (tmp_path / "a.eigencam.mp4").write_bytes(b"old output")
    (tmp_path / "readme.txt").write_text("x")
    assert expand_inputs([str(tmp_path)]) == [a, b]
    assert expand_inputs([str(tmp_path / "*.mp4")]) == [a]
    assert expand_inputs([str(a), str(tmp_path)]) == [a, b]
    (tmp_path / "0-link.mp4").symlink_to(a)  # sorts first: the file is still annotated under its own name
    assert expand_inputs([str(tmp_path)]) == [a, b] and expand_inputs([str(tmp_path / "*.mp4")]) == [a]
    assert expand_inputs([str(tmp_path / "0-link.mp4")]) == [tmp_path / "0-link.mp4"]  # named alone: as named
    with pytest.raises(SourceError, match="no such file"):
        expand_inputs([str(tmp_path / "missing.mp4")])
    with pytest.raises(SourceError, match="no videos or images match"):
        expand_inputs([str(tmp_path / "*.avi")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no videos"):
        expand_inputs([str(empty)])


def test_a_folder_or_glob_holding_one_file_still_goes_to_an_output_folder(tmp_path):
    """-o NAME without a trailing / after a folder input that happens to hold one file: a folder,
    as with two files (it was taken for the file's name and refused: 'must be an image')."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_clip(inputs / "a.mp4", frames=2)
    (job,) = plan_jobs([str(inputs)], str(tmp_path / "out"))
    assert job.output == tmp_path / "out" / "a.eigencam.mp4" and (tmp_path / "out").is_dir()
    (job,) = plan_jobs([str(inputs / "*.mp4")], str(tmp_path / "out2"))
    assert job.output == tmp_path / "out2" / "a.eigencam.mp4"
    with pytest.raises(SinkError, match=r"names a file, but a folder or glob of inputs needs an output folder"):
        plan_jobs([str(inputs)], str(tmp_path / "x.mp4"))
    named = write_clip(tmp_path / "clip [1080p].mp4", frames=2)  # a file's name with glob characters is a file
    (job,) = plan_jobs([str(named)], str(tmp_path / "out.mp4"))
    assert job.output == tmp_path / "out.mp4"
    # one file named twice is annotated once, and -o is still the folder two inputs need (a trial:
    # taken for the file's name)
    (job,) = plan_jobs([str(inputs / "a.mp4"), str(inputs / ".." / "in" / "a.mp4")], str(tmp_path / "out3"))
    assert job.output == tmp_path / "out3" / "a.eigencam.mp4"


def test_plan_jobs_places_outputs_and_refuses_to_overwrite(tmp_path):
    a = write_clip(tmp_path / "a.mp4", frames=2)
    b = write_clip(tmp_path / "b.mp4", frames=2)
    (job,) = plan_jobs([str(a)])
    assert job.output == tmp_path / "a.eigencam.mp4"
    (job,) = plan_jobs([str(a)], str(tmp_path / "x.mp4"), stats=str(tmp_path / "s.csv"))
    assert job.output == tmp_path / "x.mp4" and job.stats == tmp_path / "s.csv"
    jobs = plan_jobs([str(a), str(b)], str(tmp_path / "out"), stats=str(tmp_path / "s.csv"))
    assert [j.output for j in jobs] == [tmp_path / "out" / "a.eigencam.mp4", tmp_path / "out" / "b.eigencam.mp4"]
    assert [j.stats for j in jobs] == [tmp_path / "s.a.csv", tmp_path / "s.b.csv"]
    with pytest.raises(SinkError, match="is the input"):
        plan_jobs([str(a)], str(a), force=True)
    (tmp_path / "a.eigencam.mp4").write_bytes(b"x")
    with pytest.raises(SinkError, match="--force"):
        plan_jobs([str(a)])
    assert plan_jobs([str(a)], force=True)[0].output == tmp_path / "a.eigencam.mp4"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot create output folder"):
        plan_jobs([str(a), str(b)], str(blocker / "sub"))


def test_plan_jobs_refuses_paths_written_twice_and_outputs_named_for_another_format(tmp_path):
    """Checked before any work: a table at the output's path (it replaced the finished video), two
    tables at one path, two inputs of one name giving one derived table, a video written to a name
    that is not MP4's, several inputs to a file name."""
    a = write_clip(tmp_path / "a.mp4", frames=2)
    other = tmp_path / "other"
    other.mkdir()
    a2 = write_clip(other / "a.mp4", frames=2)
    out, table = tmp_path / "x.mp4", tmp_path / "s.csv"
    for kwargs in ({"stats": str(out)}, {"heatmaps": str(out)}, {"stats": str(table), "heatmaps": str(table)}):
        with pytest.raises(SinkError, match="written twice"):
            plan_jobs([str(a)], str(out), force=True, **kwargs)
    with pytest.raises(SinkError, match="written twice"):  # outputs beside each input; both give s.a.csv
        plan_jobs([str(a), str(a2)], stats=str(table))
    with pytest.raises(SinkError, match=f"{a} and {a2} would both write {tmp_path / 'out' / 'a.eigencam.mp4'}") as err:
        plan_jobs([str(a), str(a2)], str(tmp_path / "out"))
    assert str(err.value).endswith("(inputs of one name from two folders: give each folder its own -o)")
    import cv2  # the hint for images of one name in two formats (a trial: it was given for two folders too)

    for name in ("photo.bmp", "photo.webp"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SinkError, match=r"\(--image-format same keeps each image's own format\)$"):
        plan_jobs([str(tmp_path / "photo.bmp"), str(tmp_path / "photo.webp")], str(tmp_path / "out"))
    mkv = write_clip(tmp_path / "a.mkv", frames=2)  # two videos: no image option helps (the review)
    for fmt in ("png", "same"):
        with pytest.raises(SinkError, match=r"\(inputs whose names differ only in their extension: rename one, or "
                                            r"annotate each in a run of its own with its own -o\)$"):
            plan_jobs([str(a), str(mkv)], str(tmp_path / "out"), image_format=fmt)
    # photo.jpg and photo.JPG: --image-format same does not part them (a trial: sent round in a
    # circle); every clash is said at once (they were found one run at a time)
    (tmp_path / "case").mkdir()
    for name in ("photo.jpg", "photo.JPG", "b.png", "b.PNG"):
        assert cv2.imwrite(str(tmp_path / "case" / name), np.zeros((4, 4, 3), np.uint8))
    for fmt in ("png", "same"):
        with pytest.raises(SinkError, match=r"its own -o\); and 1 more input "
                                            "would write another's output$"):
            plan_jobs([str(tmp_path / "case")], str(tmp_path / "out"), image_format=fmt)
    assert not (tmp_path / "out").exists()  # a run refused leaves no folder behind
    b = write_clip(tmp_path / "b.mp4", frames=2)
    with pytest.raises(SinkError, match="does not exist"):
        plan_jobs([str(a), str(b)], str(tmp_path / "out"), stats=str(tmp_path / "nowhere" / "s.csv"))
    assert not (tmp_path / "out").exists()
    for name in ("e.png", "f.mkv", "g.mov"):
        with pytest.raises(SinkError, match=r"must end in \.mp4 or \.m4v"):
            plan_jobs([str(a)], str(tmp_path / name))
    # said before that it exists (a trial: "exists (use --force ...)", then with --force "must end in .mp4")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SinkError, match=r"notes\.txt for video .* must end in \.mp4 or \.m4v"):
        plan_jobs([str(a)], str(tmp_path / "notes.txt"))
    with pytest.raises(SinkError, match=r"output folder .*notes\.txt is a file, not a folder"):  # ("does not exist")
        plan_jobs([str(a)], str(tmp_path / "notes.txt" / "x.mp4"))
    with pytest.raises(SinkError, match=r"does not exist, and cannot: .*notes\.txt is a file, not a folder"):
        plan_jobs([str(a)], str(tmp_path / "notes.txt" / "deeper" / "x.mp4"))
    with pytest.raises(SinkError, match=r"is not a folder \(-o ending in / names an output folder\)"):  # one file input
        plan_jobs([str(a)], str(tmp_path / "notes.txt") + "/")
    assert plan_jobs([str(a)], str(tmp_path / "h.M4V"))[0].output == tmp_path / "h.M4V"
    for name in ("single.mp4", "both.eigencam.mp4"):
        with pytest.raises(SinkError, match="names a file, but 2 inputs need an output folder"):
            plan_jobs([str(a), str(a2)], str(tmp_path / name))
        assert not (tmp_path / name).exists()
    (job,) = plan_jobs([str(a)], str(tmp_path / "odd.mp4") + "/")  # a folder of that name, as asked
    assert job.output == tmp_path / "odd.mp4" / "a.eigencam.mp4" and (tmp_path / "odd.mp4").is_dir()


# -- two runs on one output (issue 13, item 9) ----------------------------------------------------
@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_rename_no_replace_never_replaces_and_one_of_two_racers_wins(tmp_path, monkeypatch, hard_links):
    import errno
    import os
    import threading

    from eigencam_live.renames import rename_no_replace

    if not hard_links:  # FAT, exFAT, some network shares: the exclusive-create fallback
        def no_link(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    src, dst = tmp_path / "a.part", tmp_path / "a.mp4"
    src.write_bytes(b"mine")
    rename_no_replace(src, dst)
    assert dst.read_bytes() == b"mine" and not src.exists()
    src.write_bytes(b"second")
    with pytest.raises(FileExistsError):
        rename_no_replace(src, dst)
    assert dst.read_bytes() == b"mine" and src.read_bytes() == b"second"  # both left as they were
    # Two threads finishing at the same moment, 30 times: exactly one gets the name each time.
    for round_ in range(30):
        target = tmp_path / f"race{round_}.mp4"
        meet = threading.Barrier(2, timeout=10)
        wins: list[str] = []

        def finish(name: str, target=target, meet=meet, wins=wins) -> None:
            part = tmp_path / f".{name}.{target.stem}.part"
            part.write_bytes(name.encode())
            meet.wait()
            try:
                rename_no_replace(part, target)
                wins.append(name)
            except FileExistsError:
                part.unlink()

        threads = [threading.Thread(target=finish, args=(n,)) for n in ("one", "two")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(wins) == 1 and target.read_bytes() == wins[0].encode()
    assert not list(tmp_path.glob(".*"))


def test_an_output_that_appears_during_the_run_is_kept_and_the_run_refuses(tmp_path, engine, monkeypatch):
    """The exists check at the start is not enough: another run may finish first. Its file stays;
    this run's is kept beside it under a name the error gives."""
    import os

    from eigencam_live.video import VideoSink

    src = write_clip(tmp_path / "in.mp4", frames=8, size=(96, 64))
    out = tmp_path / "out.mp4"
    write = VideoSink.write

    theirs = []  # the other run's tables too

    def write_then_another_run_finishes(self, image, pts=None, duration=None):
        write(self, image, pts, duration)
        if self.frames_written == 3:
            out.write_bytes(b"the other run's video")
            for path in theirs:
                path.write_text("the other run's table")

    monkeypatch.setattr(VideoSink, "write", write_then_another_run_finishes)
    kept = tmp_path / f"out.{os.getpid()}.mp4"
    with pytest.raises(SinkError, match="appeared while this run was writing it") as err:
        annotate_file(engine, Job(src, out), progress=False)
    assert str(kept) in str(err.value)
    assert out.read_bytes() == b"the other run's video"
    assert probe(kept)["frames"] == 8  # nothing of this run's work lost
    assert {p.name for p in tmp_path.iterdir()} == {"in.mp4", "out.mp4", kept.name}
    # its tables go beside it, named as it is (a trial: they were lost, the other run's s.csv left)
    kept.unlink()
    out.unlink()
    theirs.append(tmp_path / "s.csv")
    with pytest.raises(SinkError, match="appeared while this run was writing it") as err:
        annotate_file(engine, Job(src, out, stats=tmp_path / "s.csv", heatmaps=tmp_path / "h.npz"), progress=False)
    stats, maps = tmp_path / f"s.{os.getpid()}.csv", tmp_path / f"h.{os.getpid()}.npz"
    assert str(err.value).endswith(f"kept as {kept}, and its tables as {stats}, {maps}")
    assert len(stats.read_text().splitlines()) == 9 and np.load(maps)["maps"].shape[0] == 8
    assert (tmp_path / "s.csv").read_text() == "the other run's table" and not (tmp_path / "h.npz").exists()
    for path in (kept, stats, maps, *theirs):
        path.unlink()
    theirs.clear()
    # with overwrite (--force) the later run replaces, as asked
    assert annotate_file(engine, Job(src, out), overwrite=True, progress=False).frames == 8
    assert probe(out)["frames"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


# Two processes on one output, each held at its first frame until the other got there too: both
# passed the start's exists check, and they finish at about the same time.
_MEET_AT_FRAME_1 = """
import os, sys, time
from pathlib import Path
from eigencam_live.video import VideoSink
gate = Path(sys.argv.pop(1))
write = VideoSink.write
def write_then_meet(self, image, pts=None, duration=None):
    write(self, image, pts, duration)
    if self.frames_written == 1:
        (gate / f"ready-{os.getpid()}").touch()
        end = time.monotonic() + 60
        while len(list(gate.glob("ready-*"))) < 2 and time.monotonic() < end:
            time.sleep(0.01)
VideoSink.write = write_then_meet
from eigencam_live.cli import annotate_main
sys.exit(annotate_main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_two_annotate_processes_on_one_output_one_wins_one_refuses(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    src = write_clip(tmp_path / "in.mp4", frames=12, size=(96, 64))
    out, gate = tmp_path / "out.mp4", tmp_path / "gate"
    gate.mkdir()
    args = [sys.executable, "-c", _MEET_AT_FRAME_1, str(gate), str(src), "-o", str(out), "-m", "mobilenet_v3_small",
            "--weights", "none", "--short-side", "64", "--device", "cpu", "-q", "--threads", "1"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        done = [(p.pid, p.wait(timeout=120), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert len(list(gate.glob("ready-*"))) == 2, "both runs were writing at once"
    assert sorted(code for _, code, _ in done) == [0, 1], done
    loser_pid, _, err = next(d for d in done if d[1] == 1)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("eigencam-live: error: ") and "appeared while" in lines[0], err
    kept = tmp_path / f"out.{loser_pid}.mp4"
    assert str(kept) in lines[0]
    assert probe(out)["frames"] == 12 and probe(kept)["frames"] == 12
    assert not list(tmp_path.glob(".out*")), "part files left"


def test_tables_and_images_never_replace_a_file_another_run_wrote(tmp_path, engine, monkeypatch):
    import os

    from eigencam_live.annotate import annotate_images
    from eigencam_live.annotate.outputs import part_name, replace_atomically

    taken = tmp_path / "s.csv"
    taken.write_text("the other run's table")
    assert part_name(taken) == tmp_path / f".s.part{os.getpid()}.csv"
    with pytest.raises(SinkError, match="s.csv appeared while this run was writing it"):
        replace_atomically(taken, part_name(taken), lambda t: t.write_text("ours"), overwrite=False)
    assert taken.read_text() == "the other run's table" and sorted(tmp_path.iterdir()) == [taken]
    replace_atomically(taken, part_name(taken), lambda t: t.write_text("ours"))  # overwrite: the default
    assert taken.read_text() == "ours"
    # an image whose output appears while the run goes on: that image fails, the others are written
    import cv2

    from eigencam_live.annotate import images

    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), pattern(3))
    jobs = [Job(tmp_path / f"{n}.png", tmp_path / f"{n}.eigencam.png") for n in ("a", "b")]
    read = images._read

    def read_while_another_run_writes(path):
        if path == jobs[0].input:
            jobs[0].output.write_bytes(b"the other run's image")
        return read(path)

    monkeypatch.setattr(images, "_read", read_while_another_run_writes)
    result = annotate_images(engine, jobs, progress=False, overwrite=False)
    assert result.written == [jobs[1].output] and [p for p, _ in result.failed] == [jobs[0].input]
    assert "appeared while this run was writing it" in result.failed[0][1]
    assert jobs[0].output.read_bytes() == b"the other run's image"
    assert cv2.imread(str(jobs[1].output)).shape == (64, 96, 3)
    assert not list(tmp_path.glob(".*"))
    # one there before the run: said so, and not run (the rest is)
    monkeypatch.setattr(images, "_read", read)
    jobs[1].output.unlink()
    result = annotate_images(engine, jobs, progress=False, overwrite=False)
    assert result.written == [jobs[1].output]
    assert result.failed == [(jobs[0].input, f"{jobs[0].output} exists: left as it is (overwrite=True replaces it)")]


def test_an_unreadable_video_in_a_folder_is_named_and_the_others_are_annotated(tmp_path, capsys):
    """One broken file among a folder's videos ended the whole run before anything was written; it
    is now named (exit 1) and the rest done, as for images. Named on its own it is still refused first."""
    from eigencam_live.cli import annotate_main

    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", frames=3)
    (folder / "b.mp4").write_text("not a video\n" * 20)
    write_clip(folder / "c.mp4", frames=3)
    fast = ["--model", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "-q"]
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), *fast]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'b.mp4'}: cannot open" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.eigencam.mp4", "c.eigencam.mp4"]
    with pytest.raises(SourceError, match="b.mp4"):
        plan_jobs([str(folder / "b.mp4"), str(folder / "a.mp4")], str(tmp_path / "out2"))
    assert not (tmp_path / "out2").exists()


def test_a_folder_whose_videos_lie_in_subfolders_says_so_and_the_glob_that_takes_them(tmp_path):
    """A trial: folders are not searched below, and a folder of folders said only that it held
    no videos or images."""
    for sub in ("day1", "day2"):
        (tmp_path / "trip" / sub).mkdir(parents=True)
        write_clip(tmp_path / "trip" / sub / "clip.mp4", frames=2)
    (tmp_path / "trip" / "notes").mkdir()
    with pytest.raises(SourceError, match=r"no videos or images in folder .*trip \(folders are not searched below: "
                                          r"2 subfolders hold some, which a glob such as \".*trip/\*/\*\" takes\)"):
        expand_inputs([str(tmp_path / "trip")])
    assert [p.parent.name for p in expand_inputs([str(tmp_path / "trip" / "*" / "*")])] == ["day1", "day2"]
