"""The headless pipeline: file in, annotated H.264 out, same rate, size, frames and audio."""

from __future__ import annotations

import csv
from fractions import Fraction

import av
import numpy as np
import pytest

from eigencam_live.annotate import Job, annotate_file, expand_inputs, plan_jobs
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import ConfigError, SinkError, SourceError
from eigencam_live.render import RenderConfig

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


def test_inputs_expand_from_files_folders_and_globs(tmp_path):
    a = write_clip(tmp_path / "a.mp4", frames=2)
    b = write_clip(tmp_path / "b.mkv", frames=2)
    (tmp_path / "a.eigencam.mp4").write_bytes(b"old output")
    (tmp_path / "readme.txt").write_text("x")
    assert expand_inputs([str(tmp_path)]) == [a, b]
    assert expand_inputs([str(tmp_path / "*.mp4")]) == [a]
    assert expand_inputs([str(a), str(tmp_path)]) == [a, b]
    with pytest.raises(SourceError, match="no such file"):
        expand_inputs([str(tmp_path / "missing.mp4")])
    with pytest.raises(SourceError, match="no videos or images match"):
        expand_inputs([str(tmp_path / "*.avi")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no videos"):
        expand_inputs([str(empty)])


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
