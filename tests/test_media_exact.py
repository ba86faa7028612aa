"""Real-world media kept exactly (issue 12): phone rotation, odd sizes, timestamps within one input
tick, exact rates on constant-rate grids, truncated Matroska, degenerate videos."""

from __future__ import annotations

import re
from fractions import Fraction

import av
import numpy as np
import pytest

from eigencam_live.annotate import Job, annotate_file, plan_jobs
from eigencam_live.engine import Engine, EngineConfig
from eigencam_live.errors import SourceError
from eigencam_live.render import RenderConfig
from eigencam_live.video import Capture, VideoSink, open_source

from .media import NTSC, pattern, probe, write_clip

FILM = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu"))


def _copy(src, dst):
    """Decode ``src`` and write it again through the sink (the annotate path without the network)."""
    with Capture(open_source(str(src))) as cap:
        info = cap.info
        with VideoSink(dst, width=info.width, height=info.height, fps=info.rate, time_base=info.time_base,
                       audio_from=str(src) if info.has_audio else None) as sink:
            for frame in cap:
                sink.write(frame.image, frame.pts, frame.duration)  # as annotate does
    return sink


def _first_picture(path):
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.rotation, frame.to_ndarray(format="bgr24").astype(np.int16)


# -- 1. phone rotation -----------------------------------------------------------------------------
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_rotated_phone_clip_is_decoded_and_written_upright(tmp_path, engine, degrees):
    src = write_clip(tmp_path / "phone.mp4", frames=6, size=(96, 64), rotation=degrees)
    turns = degrees // 90  # the display matrix turns counter-clockwise, as np.rot90 does (FFmpeg's autorotate)
    shown = (64, 96) if turns % 2 else (96, 64)
    with open_source(str(src)) as source:
        assert (source.info.width, source.info.height, source.info.rotation) == (*shown, degrees)
        frame = source.read()
    upright = np.rot90(pattern(0), turns).astype(np.int16)
    assert frame.image.shape == (shown[1], shown[0], 3)
    assert np.abs(frame.image - upright).mean() < 12  # what the network gets: as a person sees it

    job = Job(src, tmp_path / "out.mp4")
    annotate_file(engine, job, RenderConfig(view="original"), progress=False)
    got = probe(job.output)
    assert (got["width"], got["height"], got["frames"]) == (*shown, 6)
    rotation, picture = _first_picture(job.output)
    assert rotation == 0  # upright pixels, no matrix left to apply
    assert np.abs(picture - upright).mean() < 12


# -- 4. odd sizes ------------------------------------------------------------------------------------
def test_an_odd_size_is_padded_by_one_edge_pixel_and_said(tmp_path, capsys):
    from eigencam_live.cli import annotate_main

    src = write_clip(tmp_path / "odd.mp4", frames=4, size=(63, 47), pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    assert annotate_main([str(src), "-o", str(out), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "note: odd.mp4: 63x47 written as 64x48" in err and "no odd sizes" in err  # which video, in a folder's run
    got = probe(out)
    assert (got["width"], got["height"], got["frames"]) == (64, 48, 4)
    _, picture = _first_picture(out)
    assert np.abs(picture[:, 63] - picture[:, 62]).mean() < 6  # the edge repeated, not black
    assert np.abs(picture[47] - picture[46]).mean() < 6


# -- 5. timestamps within one tick ------------------------------------------------------------------
@pytest.mark.parametrize("name, start, rebased", [("clock.ts", 11.4667, True), ("late.mp4", 0.5, False)])
def test_every_timestamp_is_within_one_tick_of_a_late_start(tmp_path, name, start, rebased):
    """An MP4 that starts late (an edit list) is played so: its start is kept. An MPEG-TS's clock
    starts anywhere and players start where it does (ffprobe: 12 frames, 0.4 s): the output starts
    where its first track does, the sound's priming here, at 0 (it had 11.4 s of nothing first)."""
    src = write_clip(tmp_path / name, frames=12, rate=NTSC, start=start, time_base=Fraction(1, 90000), audio=True)
    want = probe(src)
    assert want["times"][0] >= Fraction(start) - Fraction(1, 90000)  # a clock that does not start at 0
    from eigencam_live.cli import annotate_main

    assert annotate_main([str(src), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    got = probe(tmp_path / "out.mp4")
    tick = want["time_base"]
    origin = min(want["times"][0], Fraction(want["audio"]["start"])) if rebased else 0
    assert len(got["times"]) == 12 and (got["times"][0] < 0.03 if rebased else got["times"][0] > 0.49)
    assert all(abs(g - (w - origin)) <= tick for g, w in zip(got["times"], want["times"], strict=True))
    # the sound keeps its place against the picture
    assert got["audio"]["onset"] - float(got["times"][0]) == pytest.approx(want["audio"]["onset"] - float(want["times"][0]),
                                                                           abs=2e-3)


def test_recordings_joined_end_to_end_go_on_across_the_join(tmp_path, capsys):
    """`cat a.ts b.ts` (a recorder's parts, a stream saved in pieces): the second part's clock
    starts again. Its frames were written one tick apart after the first part's last one, and its
    audio was dropped as damaged (exit 3): the output was as long as one part. Each part now follows
    the last, the sound with its picture, as FFmpeg's own tools join them."""
    from eigencam_live.cli import annotate_main

    parts = [write_clip(tmp_path / f"{i}.ts", frames=25, rate=Fraction(25), start=1.4, audio=True) for i in (1, 2)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    one = probe(parts[0])
    assert annotate_main([str(joined), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "damaged" not in err
    assert ("note: joined.ts: its clock starts again at 1.02 s (it jumps back 1.0 s: recordings joined end to end); "
            "the output goes on without the jump") in err
    got = probe(tmp_path / "out.mp4")
    times = got["times"]
    assert len(times) == 50 and times[0] < 0.03
    steps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(abs(step - Fraction(1, 25)) <= Fraction(1, 90000) for step in steps)  # one grid across the join
    assert got["audio"]["packets"] >= 2 * one["audio"]["packets"] - 2  # a packet or so where the parts overlap
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio[0]
        end = max((p.pts + p.duration) * p.time_base for p in c.demux(audio) if p.pts is not None)
    assert abs(float(end) - float(times[-1] + Fraction(1, 25))) < 0.05  # the sound lasts as the picture does


@pytest.mark.parametrize("starts, said", [
    ((1000.0, 1.4), "it jumps back 999.6 s: recordings joined end to end)"),
    ((1.4, 50000.0), "it jumps ahead 49997.6 s: recordings joined end to end, or a stretch lost)"),
])
def test_a_second_part_whose_clock_is_far_off_keeps_its_sound(tmp_path, capsys, starts, said):
    """The second part's clock 1000 s behind the first's: FFmpeg moves both of its tracks on by a
    wrap (2**33 ticks, its guard); the sound alone was moved back by the priming unwrap (a trial:
    the second part's sound lost without a word, and the join said as 94439.8 s ahead). A part
    whose clock is over half a wrap ahead is not so moved, and is said as it is."""
    from eigencam_live.cli import annotate_main

    parts = [write_clip(tmp_path / f"{i}.ts", frames=25, rate=Fraction(25), start=start, audio=True)
             for i, start in enumerate(starts)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    assert annotate_main([str(joined), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    assert said in capsys.readouterr().err
    with open_source(str(joined)) as source:  # its duration spans both clocks: no count (it was 2.4 million)
        assert source.info.frame_count is None
    got, one = probe(tmp_path / "out.mp4"), probe(parts[0])
    assert len(got["times"]) == 50
    assert got["audio"]["packets"] >= 2 * one["audio"]["packets"] - 2  # a packet or so where the parts overlap


def test_a_second_part_whose_clock_starts_at_0_keeps_its_sound(tmp_path, capsys):
    """Parts whose clocks start at 0: the second part's AAC priming, 1920 ticks before its 0,
    comes mid-file as 95443.7 s; it was taken for a join the picture never reaches, and the sound
    of the whole part was lost without a word (a review: 752 of 1502 packets)."""
    import av

    parts = [write_clip(tmp_path / f"{i}.ts", frames=400, rate=Fraction(25), audio=True) for i in (1, 2)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    with av.open(str(joined)) as c:
        wrapped = [p.dts for p in c.demux(c.streams.audio[0]) if p.size and p.dts >= 2**33 - 1920]
        assert len(wrapped) == 2  # the case: each part's priming packet
    from eigencam_live.cli import annotate_main

    assert annotate_main([str(joined), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    assert "damaged" not in capsys.readouterr().err
    got, want = probe(tmp_path / "out.mp4"), probe(joined)
    assert len(got["times"]) == 800
    assert got["audio"]["packets"] >= want["audio"]["packets"] - 2  # a packet or so where the parts overlap
    assert got["audio"]["start"] == 0.0


def test_a_second_part_whose_clock_wraps_seconds_after_its_start_keeps_its_sound(tmp_path, capsys):
    """A part started 8 s before its 33-bit clock wraps: its sound up to the wrap was taken for
    priming, put before 0, and the part's sound was lost (a review: 751 of 1690 packets kept)."""
    from eigencam_live.cli import annotate_main

    wrap = 2**33 / 90000
    parts = [write_clip(tmp_path / "1.ts", frames=100, rate=Fraction(25), start=1.4, audio=True),
             write_clip(tmp_path / "2.ts", frames=400, rate=Fraction(25), start=wrap - 8, audio=True)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    assert annotate_main([str(joined), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    assert "damaged" not in capsys.readouterr().err
    got, want = probe(tmp_path / "out.mp4"), probe(joined)
    assert len(got["times"]) == 500
    assert got["audio"]["packets"] >= want["audio"]["packets"] - 2


def test_a_capture_cut_inside_a_group_of_pictures_counts_from_its_first_picture(tmp_path):
    """An MPEG-TS cut from the middle (a capture started mid-stream): its first packets cannot be
    decoded (no keyframe before them). Frame numbers started at 10 for the first picture shown, and
    the count held the 10 that never come (70 for 60)."""
    src = write_clip(tmp_path / "whole.ts", frames=100, rate=Fraction(25), gop=20, start=1.4)
    data = src.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[len(data) // 3 // 188 * 188:])  # whole 188-byte packets, inside a GOP
    with open_source(str(cut)) as source:
        assert source.info.frame_count == 60
        frames = list(iter(source.read, None))
        assert [f.index for f in frames] == list(range(60)) and frames[0].pts == pytest.approx(3.0, abs=1e-4)
        assert source.origin == pytest.approx(3.0, abs=1e-4)  # its time 0 (it was 0.4 s before it)
        source.seek(30)
        again = source.read()
        assert again.index == 30 and again.pts == pytest.approx(4.2, abs=1e-4)
        assert source.warning is None and source.damage is None


def test_the_last_frame_lasts_its_own_time_after_a_dropped_frame(tmp_path):
    """An AVI with a frame dropped (its index holds an empty entry): the decoding clock of the
    output ran a frame longer than its pictures, and the last frame was given one tick (11 us)
    to make up for it: 4.0 s written of 4.08."""
    from eigencam_live.cli import annotate_main

    src = tmp_path / "dropped.avi"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(25, 2))
        stream.width, stream.height, stream.pix_fmt, stream.time_base = 160, 96, "yuv420p", Fraction(2, 25)
        for i in [0, *range(2, 51)]:  # the second frame dropped
            frame = av.VideoFrame.from_ndarray(pattern(i, 160, 96), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(2, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert annotate_main([str(src), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    with av.open(str(tmp_path / "out.mp4")) as c:
        video = c.streams.video[0]
        assert video.frames == 50 and float(video.duration * video.time_base) == pytest.approx(4.08, abs=1e-4)


def test_a_join_is_decided_by_the_video_and_a_gap_is_kept():
    """A review: each track found its own joins, steps ahead included, so a 12 s audio dropout
    became a 'join' the video never had (the sound then played 12 s early); then, with steps ahead
    never joins, a part whose clock started 50 s higher left the last frame held 47 s."""
    from eigencam_live.video.timing import Joins

    joins = Joins()
    video, audio = joins.track(decides=True), joins.track()
    assert [audio.place(t, 0.5) for t in (1.0, 1.5, 2.0)] == [1.0, 1.5, 2.0]
    assert audio.place(14.5, 0.5) is None  # 12 s ahead: a join or a dropout? the video says
    assert [video.place(1.0 + 0.5 * i, 0.5) for i in range(29)][-1] == 15.0  # no join in the picture
    assert audio.place(14.5, 0.5) == 14.5  # so a dropout: the gap kept
    assert audio.place(1.0, 0.5) is None  # the next part's sound, before the video got there: it waits
    assert video.place(1.0, 0.5) == 15.5  # the next part: on where the picture was
    assert audio.place(1.0, 0.5) == 15.5 and audio.passed == video.passed == 1  # the video's shift
    assert video.place(60.0, 0.5) == 16.0  # a part whose clock starts 59 s higher: a join too
    assert audio.place(60.01, 0.5) == pytest.approx(16.01) and audio.passed == 2  # (near where the video restarted)
    late = Joins().track()
    late.place(2.0, 0.5)
    assert late.place(1.0, 0.5, decide=True) == 2.5  # no video to wait for (past its end): its own


# -- 6. exact rates -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, rate", [("film.mp4", FILM), ("ntsc.mkv", NTSC), ("ntsc.webm", NTSC),
                                        ("film.mkv", FILM)])
def test_a_constant_rate_input_comes_out_on_its_exact_grid(tmp_path, name, rate):
    src = write_clip(tmp_path / name, frames=30, rate=rate)  # MP4 at 1/90000 s, Matroska in ms: rounded
    want = probe(src)
    assert any(w != i / rate for i, w in enumerate(want["times"]))  # the container did round them
    with open_source(str(src)) as source:
        assert source.info.rate == rate
    _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")
    assert got["rate"] == rate  # not 414000/17267 nor 1800000/60071
    assert got["times"] == [i / rate for i in range(30)]
    assert got["duration"] == 30 / rate  # the last frame lasts one interval too (MKV's 33 ms made 0.999667 s)
    tick = want["time_base"]
    assert all(abs(g - w) <= tick for g, w in zip(got["times"], want["times"], strict=True))


def test_a_transports_picture_after_a_long_stretch_of_sound_keeps_its_exact_rate(tmp_path):
    """All the sound muxed before the picture (a poor muxer; alike, a capture whose first parameter
    set comes late): FFmpeg's first look reaches no picture, and the rate was guessed from the
    first timestamps (25.007 for 25 fps: every output frame off its grid). It is probed further."""
    src = write_clip(tmp_path / "late.ts", frames=700, rate=NTSC, audio=True, audio_first=True, start=10.0)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.width == 0  # the case: no picture at a first look
    with open_source(str(src)) as source:
        assert (source.info.rate, source.info.frame_count) == (NTSC, 700)
    sink = _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")
    assert (got["rate"], got["frames"], sink.audio_packets) == (NTSC, 700, probe(src)["audio"]["packets"])
    assert got["times"] == [10 + i / NTSC for i in range(700)]


def test_true_variable_frame_rate_in_matroska_is_kept(tmp_path):
    times = [0.0, 0.04, 0.05, 0.2, 0.21, 0.5, 0.52, 0.9]
    src = write_clip(tmp_path / "vfr.mkv", pts=times, rate=Fraction(25))
    _copy(src, tmp_path / "out.mp4")
    assert probe(tmp_path / "out.mp4")["times"] == [Fraction(round(t * 1000), 1000) for t in times]


def test_a_gifs_frame_times_are_kept_to_the_tick(tmp_path):
    """A GIF counts in 10 ms ticks. Frames one tick from a grid point of its rate were moved onto
    it (530 ms written as 520, 660 as 650): a tick away is no rounding of a grid point."""
    from PIL import Image

    durations = [70, 130, 290, 40, 100, 30, 60, 110, 20, 500]
    pictures = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)) for i in range(10)]
    pictures[0].save(tmp_path / "in.gif", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    _copy(tmp_path / "in.gif", tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")
    assert got["times"] == [Fraction(sum(durations[:i]), 1000) for i in range(10)]
    assert got["duration"] == Fraction(sum(durations), 1000)  # the last picture held its 500 ms


# -- 7. truncated Matroska ----------------------------------------------------------------------------
def test_a_cut_off_matroska_file_is_noticed_by_its_duration(tmp_path, capsys):
    from eigencam_live.cli import annotate_main

    whole = write_clip(tmp_path / "whole.mkv", frames=90, rate=Fraction(30), audio=True, audio_codec="flac")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with Capture(open_source(str(whole))) as cap:
        assert len(list(cap)) == 90 and cap.warning is None  # the whole file: no false alarm
    with Capture(open_source(str(cut))) as cap:
        frames = list(cap)
        assert 0 < len(frames) < 90
        assert "cut off" in cap.warning and "of 3.00 s" in cap.warning
    args = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]
    assert annotate_main([str(cut), *args]) == 3
    err = capsys.readouterr().err
    assert "eigencam-live: warning:" in err and "cut off" in err and "Traceback" not in err
    assert probe(tmp_path / "cut.eigencam.mp4")["frames"] == len(frames)
    # a third missing, under a second: the video track's own duration allows a few frames, not 1 s
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with Capture(open_source(str(cut))) as cap:
        assert 0.5 < 3.0 - len(list(cap)) / 30 < 1.0 and "cut off" in cap.warning


def _write_held(path, frames: int, rate: int, hold: float):
    """An MP4 of ``frames`` frames at ``rate`` whose last one is held for ``hold`` seconds (its own
    packet duration, as a slideshow or a GIF's last picture), no B-frames."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"bf": "0"}
        packets = []
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            packets += stream.encode(frame)
        packets += stream.encode(None)
        last = max(packets, key=lambda p: p.pts)
        last.duration = round(hold / last.time_base)
        for packet in packets:
            out.mux(packet)
    return path


@pytest.mark.parametrize("hold", [0.25, 0.5, 1.0])
def test_a_last_frame_held_longer_is_not_taken_for_a_cut(tmp_path, hold):
    """A slideshow or a GIF holds its last picture: the file's duration runs past the last frame's
    start by that frame's own duration, not by one frame interval."""
    path = _write_held(tmp_path / "held.mp4", 30, 30, hold)
    with Capture(open_source(str(path))) as cap:
        frames = list(cap)
        assert len(frames) == 30 and cap.warning is None
        assert frames[-1].duration == pytest.approx(round(hold * 30) / 30)  # its own, as the file gives it
        assert all(f.duration == pytest.approx(1 / 30) for f in frames[:-1])


@pytest.mark.parametrize("hold", [0.5, 3.0])
def test_a_last_frame_held_longer_is_held_as_long_in_the_output(tmp_path, engine, hold):
    """A GIF or a slideshow whose last picture stays for seconds: the output ends where the input
    does (it ended one frame interval after the last frame's start, the hold lost)."""
    src = _write_held(tmp_path / "held.mp4", 8, 10, hold)
    job = Job(src, tmp_path / "out.mp4")
    annotate_file(engine, job, RenderConfig(), progress=False)  # B-frames in the output (x264's default)
    with av.open(str(job.output)) as c:
        v = c.streams.video[0]
        frames = [(f.pts * f.time_base, f.duration * f.time_base) for f in c.decode(v)]
        assert float(v.duration * v.time_base) == pytest.approx(0.7 + hold, abs=1e-3)  # the samples' clock
        assert c.duration / 1e6 == pytest.approx(0.7 + hold, abs=1e-3)  # the edit list's
    # (a frame's own duration as FFmpeg reads it back follows the samples in decoding order: with
    # B-frames, not the frame's; players show each frame until the next one's time, the last until the end)
    assert [float(t) for t, _ in frames] == pytest.approx([i / 10 for i in range(8)])


@pytest.mark.parametrize("degrees", [0, 90])
def test_anamorphic_pixels_keep_their_shape(tmp_path, engine, degrees):
    """A clip whose pixels are not square (4:3: 96x64 shown as 128x64) comes out with the same
    sample aspect ratio, so that players show it as wide; upright, a pixel's shape turns with it."""
    src = write_clip(tmp_path / "wide.mp4", frames=5, aspect=Fraction(4, 3), rotation=degrees)
    want = Fraction(3, 4) if degrees else Fraction(4, 3)
    with open_source(str(src)) as source:
        assert source.info.aspect == want
    job = Job(src, tmp_path / "out.mp4")
    annotate_file(engine, job, RenderConfig(view="side-by-side"), progress=False)
    with av.open(str(job.output)) as c:
        v = c.streams.video[0]
        assert Fraction(v.sample_aspect_ratio) == want
        assert (v.width, v.height) == ((64 * 2, 96) if degrees else (96 * 2, 64))


def test_an_mp4_edit_list_cut_is_whole_not_cut_off(tmp_path, capsys):
    """A cut copied without re-encoding (ffmpeg -ss ... -c copy) keeps the GOP before the cut in the
    file and hides it with an edit list: the file stores 50 frames and plays 11. Those 11 are the
    input; no warning, and the audio to its end."""
    from eigencam_live.cli import annotate_main

    src = write_clip(tmp_path / "src.mp4", frames=50, audio=True)
    cut = tmp_path / "cut.mp4"
    with av.open(str(src)) as inp, av.open(str(cut), "w", format="mp4") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            shift = round(Fraction(13, 10) / packet.time_base)  # the first 1.3 s: before the cut
            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 50
    shown = probe(cut)
    assert shown["frames"] == 11
    with Capture(open_source(str(cut))) as cap:
        assert cap.info.frame_count == 11 and len(list(cap)) == 11 and cap.warning is None
    args = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]
    assert annotate_main([str(cut), *args]) == 0
    assert "warning" not in capsys.readouterr().err
    got = probe(tmp_path / "cut.eigencam.mp4")
    assert got["times"] == shown["times"]
    assert got["audio"]["packets"] == shown["audio"]["packets"]


# -- 8. degenerate videos -----------------------------------------------------------------------------
def test_a_one_pixel_video_is_refused_before_any_work_naming_the_file(tmp_path):
    src = write_clip(tmp_path / "dot.mkv", frames=3, size=(1, 1), pix_fmt="yuv444p")
    with pytest.raises(SourceError, match=r"dot\.mkv is 1x1 pixels: too small"):
        plan_jobs([str(src)])


def test_a_single_frame_without_a_rate_becomes_one_frame_at_30_fps(tmp_path, engine):
    src = tmp_path / "still.mkv"
    with av.open(str(src), "w") as out:  # one JPEG picture in Matroska: no rate anywhere
        v = out.add_stream("mjpeg")
        v.width, v.height, v.pix_fmt, v.time_base = 96, 64, "yuvj420p", Fraction(1, 1000)
        frame = av.VideoFrame.from_ndarray(pattern(0), format="bgr24").reformat(format="yuvj420p")
        frame.pts, frame.time_base = 0, Fraction(1, 1000)
        for packet in [*v.encode(frame), *v.encode(None)]:
            out.mux(packet)
    with open_source(str(src)) as source:
        assert source.info.rate <= 240  # never the 1000 "fps" of Matroska's clock
    job = Job(src, tmp_path / "out.mp4")
    assert annotate_file(engine, job, progress=False).frames == 1
    got = probe(job.output)
    with av.open(str(src)) as c:  # the picture's own duration, where the container gives one (41 ms here)
        held = next(c.decode(video=0))
        held = held.duration * held.time_base if held.duration else Fraction(1, 30)
    assert got["frames"] == 1 and got["rate"] in (Fraction(30), source.info.rate, 1 / held)


def test_when_and_where_it_was_filmed_is_kept_and_tracks_left_out_are_said(tmp_path, capsys):
    """The input's own tags (creation time, place, title, a phone's own keys) and its tracks'
    languages go into the output, so a photo library files it under the day and place it was
    filmed; a second audio track, which the output leaves out, is said."""
    from eigencam_live.cli import annotate_main

    plain = write_clip(tmp_path / "plain.mp4", frames=6, audio=True)
    src = tmp_path / "phone.mp4"
    with av.open(str(plain)) as inp, av.open(str(src), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update({"creation_time": "2024-05-01T10:00:00.000000Z", "title": "My clip",
                             "location": "+48.8566+002.3522/",
                             "com.apple.quicktime.location.ISO6709": "+48.8566+002.3522+035.000/",
                             "com.apple.quicktime.model": "iPhone 12"})
        video = out.add_stream_from_template(inp.streams.video[0])
        sounds = [out.add_stream_from_template(inp.streams.audio[0]) for _ in range(2)]
        video.metadata["language"], sounds[0].metadata["language"] = "eng", "fra"
        for packet in inp.demux():
            if packet.dts is None:
                continue
            targets = [video] if packet.stream.type == "video" else sounds
            for stream in targets:
                packet.stream = stream
                out.mux(packet)
    assert annotate_main([str(src), "-o", str(tmp_path / "out.mp4"), "--model", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "-q"]) == 0
    err = capsys.readouterr().err
    assert "note: phone.mp4: not kept in the output: 1 audio track beyond the first" in err
    with av.open(str(tmp_path / "out.mp4")) as c:
        tags = c.metadata
        assert len(c.streams.audio) == 1
        languages = [c.streams.video[0].metadata.get("language"), c.streams.audio[0].metadata.get("language")]
    assert tags["creation_time"].startswith("2024-05-01T10:00:00") and tags["title"] == "My clip"
    assert tags["location"] == "+48.8566+002.3522/"
    # a phone's own keys (where an iPhone's Photos looks) and the tracks' languages (they were lost)
    assert tags["com.apple.quicktime.location.ISO6709"] == "+48.8566+002.3522+035.000/"
    assert tags["com.apple.quicktime.model"] == "iPhone 12" and languages == ["eng", "fra"]
    # with a phone's keys, FFmpeg writes every key as one: the title goes where Apple's players read it
    assert tags["com.apple.quicktime.title"] == "My clip"


def test_matroskas_date_recorded_is_mp4s_date():
    from eigencam_live.video.sink import _mp4_tags

    assert _mp4_tags({"title": "t", "DATE_RECORDED": "2021-06-01"}) == ({"title": "t", "date": "2021-06-01"}, False)


@pytest.mark.parametrize(("transfer", "said"), [(16, "HDR (PQ)"), (18, "HDR (HLG)"), (14, "wide-gamut (BT.2020)"),
                                                (1, None)])
def test_hdr_and_wide_gamut_inputs_are_said_to_lose_their_colours(tmp_path, transfer, said):
    """An SDR BT.601 output keeps a BT.2020 HDR phone clip's matrix but not its gamut or its
    brightness: said, not silently washed out."""
    src = tmp_path / "hdr.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        cc = v.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace = (9, transfer, 9) if transfer != 1 else (1, 1, 1)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="bgr24").reformat(format="yuv420p")
            frame.pts = i
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode(None):
            out.mux(packet)
    with open_source(str(src)) as source:
        note, tags = source.colour_note, source.colour_tags
    assert (note is None) if said is None else note.startswith(said)
    # an SDR BT.709 input's primaries and transfer are stated in its output too (they were unset);
    # HDR's are not (written as SDR)
    assert tags == ((1, 1) if said is None else None)
    if said is None:
        from eigencam_live.cli import annotate_main

        assert annotate_main([str(src), "-o", str(tmp_path / "out.mp4"), "--weights", "none", "--device", "cpu",
                              "--short-side", "64", "-q"]) == 0
        with av.open(str(tmp_path / "out.mp4")) as c:
            cc = c.streams.video[0].codec_context
            assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == (1, 1, 6, 1)


@pytest.mark.parametrize("packets", [60, 900])
def test_a_stretch_a_transports_demuxer_drops_is_said(tmp_path, capsys, packets):
    """An MPEG-TS file damaged mid-way (transport packets overwritten): the demuxer drops that
    stretch without a word, no packet is refused, and the run used to warn "ends early (cut off?)"
    though the damage was in the middle and the end was there. The gap in its clock is now said
    where it is on the output's clock (this one starts at 10 s), with the number of frames lost:
    the frames written and the frames lost add up to the whole, and the output holds the frame
    before the gap for its time, as players do. Over 64 KiB without a sync byte (900 packets)
    FFmpeg's resync gave up and the file ended there ("decoding stopped"); demuxing goes on."""
    from eigencam_live.cli import annotate_main

    clip = write_clip(tmp_path / "in.ts", frames=400, rate=Fraction(25), size=(320, 240), time_base=Fraction(1, 90000),
                      start=10.0)
    data = bytearray(clip.read_bytes())
    at = len(data) // 3 - (len(data) // 3) % 188
    assert at + 188 * packets < len(data) * 0.9
    data[at : at + 188 * packets] = b"\xaa" * (188 * packets)  # the sync bytes too: whole transport packets lost
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    assert annotate_main([str(damaged), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m",
                          "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 3
    err = capsys.readouterr().err
    times = probe(tmp_path / "out.mp4")["times"]
    steps = np.diff([float(t) for t in times])
    jump = int(np.argmax(steps))
    lost = round(steps[jump] * 25) - 1
    assert lost >= 2 and sum(s > 0.05 for s in steps) == 1 and len(times) + lost == 400 and times[0] < 0.01
    assert (f"damaged.ts: {lost} frames are missing between {float(times[jump]):.2f} and {float(times[jump + 1]):.2f} s "
            "(a gap in its timestamps: dropped by its recorder, or lost; the frame before it is held)") in err
    assert "ends early" not in err and "stopped" not in err and "Traceback" not in err


def test_a_picture_decoded_out_of_order_after_damage_is_left_out(tmp_path):
    """A trial's damaged MPEG-TS (B-frames): the decoder gave out 2.88, 4.16, 4.20, 2.96, 4.24 s.
    The stray 2.96 was taken for a join of recordings and every later frame was shifted 1.28 s
    late (the output 7.24 s long of 6 s, the picture out of step with any sound). It is left out
    and said; the rest keep their times."""
    from eigencam_live.video.files import FileSource

    clean = tmp_path / "clean.ts"
    with av.open(str(clean), "w", format="mpegts") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(150):
            img = np.zeros((240, 320, 3), np.uint8)
            img[:, :, 0] = (i * 5) % 255
            img[100:140, (i * 2) % 280 : (i * 2) % 280 + 40] = 255
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())
    data = bytearray(clean.read_bytes())
    at = len(data) // 188 // 2 * 188
    data[at : at + 60 * 188] = b"\xaa" * (60 * 188)
    (tmp_path / "damaged.ts").write_bytes(bytes(data))
    src = FileSource(str(tmp_path / "damaged.ts"))
    try:
        times = []
        while (frame := src.read()) is not None:
            times.append(frame.pts - src.origin)
        assert all(b > a for a, b in zip(times, times[1:], strict=False)) and times[-1] == pytest.approx(149 / 25, abs=1e-3)
        assert len(times) + src.gaps.missing == 150 and src.warning is None
        assert "1 of them decoded out of order, after the gap, and left out" in src.damage
    finally:
        src.close()


def test_pictures_out_of_order_are_told_from_a_join_by_where_the_clock_goes_next(tmp_path):
    """Two pictures out of order in a row (a decoder with more B-frames) were taken for a join (a
    review): the clock comes back within a few frames after strays, and stays back after a join."""
    from types import SimpleNamespace

    from eigencam_live.video.files import FileSource

    src = FileSource(str(write_clip(tmp_path / "in.ts", frames=5, rate=Fraction(25), time_base=Fraction(1, 25))))
    try:
        def run(times):
            decoded = iter([SimpleNamespace(pts=t, time_base=Fraction(1, 25)) for t in times])
            src._decode_next = lambda: next(decoded, None)
            src._strays.clear()
            src._ahead, src._peeked, src._last_raw = [], None, 99  # as read() goes
            got = []
            while (frame := src._next_decoded()) is not None and (frame := src._in_order(frame)) is not None:
                got.append(frame.pts)
                src._last_raw = frame.pts
            return got, sorted(src._strays)

        assert run([74, 75, 100, 101]) == ([100, 101], [74, 75])  # two strays, then the clock back
        assert run([5, 6, 7, 8, 9, 10]) == ([5, 6, 7, 8, 9, 10], [])  # a join: the clock stays back
        # a join's last part of three frames (a review: left out as strays), and a part of two
        # frames joined before another part, its frames held and given out in order
        assert run([5, 6, 7]) == ([5, 6, 7], [])
        assert run([50, 51, 20, 21, 22, 23, 24, 25]) == ([50, 51, 20, 21, 22, 23, 24, 25], [])
    finally:
        src.close()


def test_a_gap_is_found_after_a_seek_too(tmp_path):
    """A review: after any seek in an MPEG-TS file but to its start, gaps went unfound, and the
    frames they lost read as a file "ending early (cut off?)"."""
    from eigencam_live.video.files import FileSource

    times = [*(i / 25 for i in range(75)), *(i / 25 for i in range(85, 150))]
    src = FileSource(str(write_clip(tmp_path / "gap.ts", pts=times, rate=Fraction(25), start=1.4)))
    try:
        src.seek(10)
        count = 0
        while src.read() is not None:
            count += 1
        assert count == 130 and src.warning is None
        assert src.damage.endswith(": 10 frames are missing between 2.96 and 3.40 s (a gap in its timestamps: dropped "
                                   "by its recorder, or lost; the frame before it is held)")
    finally:
        src.close()


def test_a_stretch_without_sync_bytes_over_ten_seconds_is_said_as_lost(tmp_path):
    """A review: 150 KB zeroed in a low-rate MPEG-TS lost 17 s of video; the clock's jump ahead was
    taken for a join of recordings and the run said nothing. Where demuxing had to resync over
    the stretch, the jump is said as the frames lost."""
    from eigencam_live.video.files import FileSource

    clip = write_clip(tmp_path / "slow.ts", frames=900, rate=Fraction(5), size=(64, 48), time_base=Fraction(1, 90000))
    data = bytearray(clip.read_bytes())
    at = len(data) // 2 - (len(data) // 2) % 188
    zeroed = min(len(data) // 3, 188 * 1200) // 188 * 188
    data[at : at + zeroed] = bytes(zeroed)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    src = FileSource(str(damaged))
    try:
        times = []
        while (frame := src.read()) is not None:
            times.append(frame.pts - src.origin)
        jumps = [b - a for a, b in zip(times, times[1:], strict=False) if b - a > 1]
        assert jumps == [] and src.warning is None  # the output goes on without the jump (a join's way)
        lost = 900 - len(times)
        said = f": {lost} frames are missing at (\\d+\\.\\d\\d) s \\(a stretch without sync bytes, unreadable: the output goes on"
        found = re.search(said, src.damage)
        assert lost > 50 and found and float(found[1]) in [round(t, 2) for t in times]  # where the output goes on
    finally:
        src.close()


def test_the_sound_goes_on_after_a_stretch_without_sync_bytes(tmp_path, capsys):
    """A trial: the sound after such a stretch was dropped (its demuxing stopped at FFmpeg's EAGAIN
    as the video's had), 22 s of a 46 s output silent; and the warning said "346 video packets
    could not be decoded ... ()" of packets none of which was refused."""
    from eigencam_live.cli import annotate_main

    clip = write_clip(tmp_path / "in.ts", frames=300, rate=Fraction(25), size=(320, 240), time_base=Fraction(1, 90000),
                      audio=True, start=1.4)  # (as FFmpeg's muxer starts a clock)
    data = bytearray(clip.read_bytes())
    at = len(data) // 3 - (len(data) // 3) % 188
    data[at : at + 188 * 1000] = bytes(188 * 1000)
    (tmp_path / "damaged.ts").write_bytes(bytes(data))
    assert annotate_main([str(tmp_path / "damaged.ts"), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m",
                          "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 3
    err = capsys.readouterr().err
    assert "frames are missing between" in err and "could not be decoded" not in err and "Traceback" not in err
    got = probe(tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio[0]
        end = max((p.pts + p.duration) * p.time_base for p in c.demux(audio) if p.pts is not None)
    assert 100 < len(got["times"]) < 300 and abs(float(end) - float(got["times"][-1] + Fraction(1, 25))) < 0.05


def test_the_sound_after_a_join_goes_by_the_videos_shift_where_it_resumes_earlier():
    """A trial: after a stretch lost from an MPEG-TS (taken as a join), the sound resumed 0.43 s
    of its clock before the picture did. Placed by the video's shift its first packet ended before
    the sound already written; the next ones were taken for a step back, waited to the end of the
    run and were then laid after it: 0.3 s late against the picture."""
    from eigencam_live.video.timing import Joins

    joins = Joins()
    video, audio = joins.track(decides=True), joins.track()
    for i in range(25):
        video.place(i / 25, 1 / 25)
        audio.place(i / 25, 1 / 25)
    assert video.place(30.0, 1 / 25) == pytest.approx(1.0)  # a jump ahead: a join, on where the video was
    shift = 1.0 - 30.0
    placed = [audio.place(29.6 + k * 0.02, 0.02) for k in range(40)]
    assert placed == pytest.approx([29.6 + k * 0.02 + shift for k in range(40)])


def test_the_gaps_of_a_transports_clock():
    """What counts as frames lost: a step beyond 1.8 usual ones, with a usual one after it. Film
    telecined into 29.97 fps video steps 1 and 1.5 frames in turn, and a broadcast goes from 50p
    to 25p: nothing lost. A gap met again after a seek or a loop is counted once; one just before
    the last frame counts at the end."""
    from eigencam_live.video.timing import Gaps

    film = Gaps()
    t = 0.0
    for i in range(40):
        film.see(t)
        t += (1.0 if i % 2 else 1.5) * 1001 / 30000
    assert film.missing == 0 and film.describe() is None
    broadcast = Gaps()
    for t in [*(i / 50 for i in range(50)), *(0.98 + i / 25 for i in range(1, 100))]:
        broadcast.see(t)
    broadcast.restart()
    assert broadcast.missing == 0 and broadcast.describe() is None
    def missing(times, loop=()):
        gaps = Gaps()
        for t in times:
            gaps.see(t)
        gaps.restart()
        for t in loop:  # (a loop to the start)
            gaps.see(t)
        gaps.restart()
        return gaps.missing

    fifty = [i / 50 for i in range(50)]
    end = fifty[-1]
    # (a review) a 25p stretch that goes back to 50p: its steps were gaps, each of one frame; a long
    # step in it counted at 50p; a new rate at the end stands through a loop; one jittered pair
    # of steps after a new rate is not the old rate back
    assert missing([*fifty, *(end + 0.04 * k for k in range(1, 6)), *(end + 0.2 + 0.02 * k for k in range(1, 30))]) == 5
    assert missing([*fifty, *(end + 0.04 * k for k in range(1, 4)), end + 0.24,
                    *(end + 0.24 + 0.02 * k for k in range(1, 30))]) == 8
    assert missing([*fifty, *(end + 0.04 * k for k in range(1, 6))], loop=fifty) == 0
    assert missing([*fifty, *(end + 0.04 * k for k in range(1, 5)), end + 0.18, end + 0.24,
                    *(end + 0.24 + 0.04 * k for k in range(1, 20))]) == 0
    bursts = Gaps()  # a bad signal: two lost, one kept, four times (a review: taken for a new rate)
    for t in [*range(20), 23, 26, 29, 32, *range(33, 50)]:
        bursts.see(t / 25)
    assert bursts.missing == 9 and bursts.describe().startswith("9 frames are missing in 4 places, the first between 0.76 and 0.92")
    lost = Gaps()
    for _ in range(2):  # a loop
        lost.restart()
        for i in [*range(11), *range(12, 20), *range(25, 30), 32]:  # one frame lost, five, two at the end
            lost.see(i / 25)
    lost.restart()  # the end
    assert lost.missing == 8
    assert lost.describe() == ("8 frames are missing in 3 places, the first between 0.40 and 0.48 s (a gap in its "
                               "timestamps: dropped by its recorder, or lost; the frame before it is held)")


def test_a_seek_in_joined_recordings_never_calls_them_cut_off(tmp_path):
    """Joined recordings count their first part's frames, and a seek finds frames by a clock their
    parts share: a seek past that count found nothing, and the file was said cut off ("decoded 0
    of 12 frames", a review) for the rest of its run, once its joins were forgotten at the seek."""
    from eigencam_live.video import open_source

    parts = [write_clip(tmp_path / f"{i}.ts", frames=12, rate=Fraction(25), start=1.4) for i in (1, 2)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    with open_source(str(joined)) as source:
        assert len(list(iter(source.read, None))) == 24 and source.info.frame_count == 12
        for index in (20, 30, 5):
            source.seek(index)
            got = list(iter(source.read, None))
            assert source.warning is None, (index, source.warning)
        assert got[0].index == 5


def test_parts_joined_with_a_clock_far_ahead_are_whole(tmp_path, capsys):
    """`cat a.ts b.ts` of parts of other lengths, the second's clock 30 s ahead: the duration the
    container gives spans both clocks, and the run warned "ends early (cut off?)" of a whole file."""
    from eigencam_live.cli import annotate_main

    parts = [write_clip(tmp_path / "1.ts", frames=20, rate=Fraction(25), start=1.4),
             write_clip(tmp_path / "2.ts", frames=60, rate=Fraction(25), start=40.0)]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(parts[0].read_bytes() + parts[1].read_bytes())
    assert annotate_main([str(joined), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "ends early" not in err and "missing" not in err
    assert ("note: joined.ts: its clock starts again at 0.80 s (it jumps ahead 37.8 s: recordings joined end to end, "
            "or a stretch lost); the output goes on without the jump") in err
    assert len(probe(tmp_path / "out.mp4")["times"]) == 80


def test_a_file_that_is_not_a_transport_counts_no_gaps(tmp_path):
    from eigencam_live.video.files import FileSource

    times = [*(i / 25 for i in range(10)), *(i / 25 for i in range(15, 20))]  # variable rate: a long hold
    src = FileSource(str(write_clip(tmp_path / "vfr.mp4", pts=times, rate=Fraction(25))))
    try:
        while src.read() is not None:
            pass
        assert src.gaps is None and src.damage is None and src.warning is None
    finally:
        src.close()


def test_cover_art_is_not_the_video(tmp_path, capsys):
    """A song's or a podcast's cover art is a video track of one picture attached to the sound: a
    song was annotated as a one-frame video, its sound cut to 50 ms, and said cut off (exit 3). It
    has no video; beside a video, the cover art is not taken for it, and said left out."""
    from eigencam_live.cli import annotate_main

    song = write_clip(tmp_path / "podcast.mp4", frames=50, rate=Fraction(25), audio=True, cover=True, video=False)
    args = ["--view", "original", "-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]
    assert annotate_main([str(song), "-o", str(tmp_path / "out.mp4"), *args]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "podcast.mp4 has no video stream (only cover art: a picture attached to its sound; to annotate it, save it "
        "as an image first)")
    clip = write_clip(tmp_path / "clip.mp4", frames=30, rate=Fraction(25), audio=True, cover=True)
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), *args]) == 0
    assert "not kept in the output: its cover art" in capsys.readouterr().err
    got, want = probe(tmp_path / "out.mp4"), probe(clip)
    assert len(got["times"]) == 30 and got["times"] == want["times"]


def test_a_variable_rate_clip_with_b_frames_ends_where_its_input_does(tmp_path):
    """A screen recording (idle stretches, frames decoded out of order): a decoded frame's duration
    is its packet's, a gap in decoding order (2.48 s for the frame at 4.5 s here), and the output
    ran to 6.98 s against the input's 6.02, its picture past its sound. Each frame's hold stops at
    the track's end (at the file's, after it)."""
    from eigencam_live.cli import annotate_main

    times = [0, 1 / 60, 2 / 60, 2.0, 2.0 + 1 / 60, 4.5, 4.5 + 1 / 60, 6.0]
    clip = write_clip(tmp_path / "screen.mp4", pts=times, rate=Fraction(60), bframes=2)
    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.has_b_frames  # (else nothing is tested)
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    got, want = probe(tmp_path / "out.mp4"), probe(clip)
    assert got["times"] == want["times"]
    assert _edit_list_end(tmp_path / "out.mp4") == pytest.approx(6.0 + 1 / 60, abs=1e-4)  # where players end it


def _edit_list_end(path) -> float:
    """Seconds the first track's edit list (``elst``) plays, in the movie's timescale (``mvhd``):
    where FFmpeg, and players, end the video."""
    data = path.read_bytes()
    at = data.index(b"mvhd") + 4
    wide = data[at] == 1
    scale = int.from_bytes(data[at + (20 if wide else 12): at + (24 if wide else 16)], "big")
    at = data.index(b"elst") + 4
    wide, count = data[at] == 1, int.from_bytes(data[at + 4: at + 8], "big")
    size = 20 if wide else 12
    durations = [int.from_bytes(data[at + 8 + k * size: at + 8 + k * size + (8 if wide else 4)], "big") for k in range(count)]
    return sum(durations) / scale
