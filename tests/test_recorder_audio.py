"""The app's recordings carry the source file's sound for the recorded span (issue 12): copied when
MP4 can hold the codec, re-encoded otherwise, in sync with the frames; live sources stay video-only;
a seek while recording is cut out of the video and the sound follows the jump."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from eigencam_live.engine import EngineConfig
from eigencam_live.render import RenderConfig
from ui import commands as cmd
from ui.frame_loop import FrameLoop
from ui.recorder import MAX_GAP_S, Recorder

from .media import probe, write_clip

RATE = Fraction(25)
AUDIO_FRAME = 1024 / 48000  # one AAC frame: the cut's granularity


def _frames(path) -> list[tuple[np.ndarray, float]]:
    """Every frame of ``path`` as the app gets it: (BGR image, pts in seconds)."""
    with av.open(str(path)) as c:
        return [(f.to_ndarray(format="bgr24"), float(f.time)) for f in c.decode(video=0)]


def _samples(path) -> tuple[float, np.ndarray]:
    """(time of the first decoded sample, the first channel as float32 from there, each decoded frame
    at its own time: silence where the track has no packets)."""
    with av.open(str(path)) as c:
        frames = [(round(f.time * f.sample_rate), f.to_ndarray()[0].astype(np.float32)) for f in c.decode(audio=0)]
    first = frames[0][0]
    sound = np.zeros(frames[-1][0] + len(frames[-1][1]) - first, np.float32)
    for at, chunk in frames:
        sound[at - first : at - first + len(chunk)] = chunk
    return first / 48000, sound


def _loud_spans(path) -> list[tuple[float, float]]:
    """(start, end) in seconds of the stretches where the tone sounds (silence or no audio between)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    spans: list[list[float]] = []
    for f in frames:
        loud = np.flatnonzero(np.abs(f.to_ndarray()[0].astype(np.float64)) > 0.05)
        if not len(loud):
            continue
        begin, end = f.time + loud[0] / f.sample_rate, f.time + (loud[-1] + 1) / f.sample_rate
        if spans and begin - spans[-1][1] < 0.01:
            spans[-1][1] = end
        else:
            spans.append([begin, end])
    return [(a, b) for a, b in spans]


def _record(src, dst, frames, audio_from) -> Recorder:
    rec = Recorder()
    rec.start(dst, fps=float(RATE), audio_from=audio_from)
    for image, pts in frames:
        rec.write(image, pts)
    rec.stop()
    return rec


def test_aac_is_copied_for_the_recorded_span_in_sync_to_the_sample(tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=100, rate=RATE, audio=True)  # 4 s, AAC
    frames = _frames(src)
    out = tmp_path / "rec.mp4"
    rec = _record(src, out, frames[25:75], src)  # 1.00 s .. 2.96 s of the source
    assert rec.audio_note is None  # copied, not re-encoded
    got = probe(out)
    assert got["pts"][0] == 0.0 and got["pts"][-1] == pytest.approx(1.96, abs=1e-4) and got["frames"] == 50
    assert (got["audio"]["codec"], got["audio"]["sample_rate"]) == ("aac", 48000)
    # Packet for packet: the output's packets are a run of the source's, unchanged.
    with av.open(str(src)) as c:
        source_packets = [bytes(p) for p in c.demux(audio=0) if p.size]
    with av.open(str(out)) as c:
        copied = [bytes(p) for p in c.demux(audio=0) if p.size]
    first = source_packets.index(copied[0])
    assert copied == source_packets[first : first + len(copied)]
    # The span: the sound starts with the first frame and ends with the last, within one audio frame.
    start, sound = _samples(out)
    assert start == pytest.approx(0.0, abs=AUDIO_FRAME)
    end = start + len(sound) / 48000
    assert 2.0 - 1e-6 <= end <= 2.0 + AUDIO_FRAME, end  # the last frame ends at 2.00 s
    # In sync to the sample: what sounds at t in the recording sounded at 1.0 + t in the source.
    src_start, src_sound = _samples(src)
    offset = round((1.0 + start - src_start) * 48000)
    window = slice(2048, 2048 + 24000)  # past the first packet (decoded without its predecessor)
    assert np.abs(sound[window] - src_sound[offset + window.start : offset + window.stop]).max() < 1e-3


def test_audio_mp4_cannot_hold_is_reencoded_and_keeps_its_place(tmp_path):
    # PCM that starts 1.5 s into the clip; the recording starts at 1.0 s: the tone must start at 0.5 s.
    src = write_clip(tmp_path / "in.mov", frames=75, rate=RATE, audio=True, audio_codec="pcm_s16le", audio_start=1.5)
    frames = _frames(src)
    out = tmp_path / "rec.mp4"
    rec = _record(src, out, frames[25:60], src)  # 1.00 s .. 2.36 s: 35 frames, 1.40 s
    assert "re-encoded from pcm_s16le to AAC" in rec.audio_note
    got = probe(out)
    assert got["audio"]["codec"] == "aac" and got["frames"] == 35
    assert got["audio"]["onset"] == pytest.approx(0.5, abs=1e-3)
    spans = _loud_spans(out)
    assert len(spans) == 1 and spans[0][1] == pytest.approx(1.4, abs=AUDIO_FRAME)


def test_live_sources_and_files_without_sound_give_video_only_recordings(tmp_path):
    rec = _record(None, tmp_path / "live.mp4", [(np.full((64, 96, 3), 90, np.uint8), 7.0 + i / 25) for i in range(5)],
                  None)
    assert rec.audio_packets == 0 and probe(tmp_path / "live.mp4")["audio"] is None
    silent = write_clip(tmp_path / "silent.mp4", frames=5, rate=RATE)
    _record(silent, tmp_path / "silent-rec.mp4", _frames(silent), silent)
    got = probe(tmp_path / "silent-rec.mp4")
    assert got["audio"] is None and got["frames"] == 5


def test_a_jump_is_cut_out_and_small_gaps_are_kept(tmp_path):
    """A live source resumed after a pause (its clock went on) or a seek: the next frame follows one
    frame after the last; a gap under MAX_GAP_S is the source's own timing and stays."""
    image = np.full((64, 96, 3), 90, np.uint8)
    pts = [3.0, 3.04, 3.08, 3.08 + MAX_GAP_S / 2, 3.08 + MAX_GAP_S / 2 + 0.04, 20.0, 20.04, 1.0, 1.04]
    _record(None, tmp_path / "cuts.mp4", [(image, t) for t in pts], None)
    half = 0.08 + MAX_GAP_S / 2
    assert probe(tmp_path / "cuts.mp4")["pts"] == pytest.approx(
        [0.0, 0.04, 0.08, half, half + 0.04, half + 0.08, half + 0.12, half + 0.16, half + 0.20], abs=1e-4)


class _Out:
    """What the loop would signal to the window: each signal's calls, by name."""

    def __getattr__(self, name: str) -> SimpleNamespace:
        signal = SimpleNamespace(calls=[])
        signal.emit = lambda *args: signal.calls.append(args)
        setattr(self, name, signal)
        return signal


class _Picture:
    """An engine stand-in that shows the frame itself: the recording holds the source's pictures."""

    backend = SimpleNamespace(preparing=False, warning=None, running="torch")
    preparing = lambda self, frame_hw=None: self.backend.preparing  # noqa: E731 (as Engine.preparing)
    loaded = SimpleNamespace(spec=SimpleNamespace(fixed_input=None), note=None)  # any input size

    def input_size(self, frame_hw=None):
        return None

    def reset(self):
        pass

    def process(self, image, render=None):
        return [SimpleNamespace(picture=image, heatmap=None)]


def _loop(src) -> FrameLoop:
    loop = FrameLoop(EngineConfig(weights="none", device="cpu"), RenderConfig(), _Out())
    loop.engine = _Picture()
    loop._open(cmd.OpenSource(str(src)))
    return loop


def test_the_app_records_a_files_sound_and_a_seek_back_is_cut_with_its_sound(tmp_path):
    # The tone starts 0.5 s into a 2 s clip. Record 0.00-0.96 s (paused on the way, one frame stepped
    # while paused: nothing added), seek back to frame 0, record it again: the video runs on without
    # a jump, and the sound follows the pictures (a second onset at 1.5 s).
    src = write_clip(tmp_path / "in.mp4", frames=50, rate=RATE, audio=True, audio_start=0.5)
    loop = _loop(src)
    try:
        out = tmp_path / "rec.mp4"
        loop._start_recording(cmd.StartRecording(out))
        assert loop.recorder.audio_from == str(src)
        for _ in range(10):
            loop._process_next(record=True)
        loop._step(cmd.Step(1))  # pauses, then records frame 10
        loop._set_paused(cmd.SetPaused(False))
        for _ in range(14):
            loop._process_next(record=True)
        loop._seek(cmd.Seek(0))
        for _ in range(25):
            loop._process_next(record=True)
        assert loop.recorder.frames_written == 50
        loop._stop_recording()
    finally:
        loop._close_source()
    assert loop.out.error.calls == []
    got = probe(out)
    assert got["frames"] == 50 and got["pts"] == pytest.approx([i / 25 for i in range(50)], abs=1e-4)
    assert got["audio"]["codec"] == "aac"
    spans = _loud_spans(out)
    assert len(spans) == 2, spans
    (a0, a1), (b0, b1) = spans
    # The onsets (0.7 ms of AAC pre-echo before the tone's sharp start). At the cut the source's first
    # AAC packet, its encoder's priming that the source's edit list hides, is copied in its place
    # and heard: one audio frame before the tone, as in the source's own clock.
    assert a0 == pytest.approx(0.5, abs=1e-3)
    assert 1.5 - AUDIO_FRAME - 1e-3 <= b0 <= 1.5 + 1e-3
    assert a1 == pytest.approx(1.0, abs=AUDIO_FRAME) and b1 == pytest.approx(2.0, abs=AUDIO_FRAME)
    # In sync to the sample: both stretches sound as the source did at the frames' times.
    start, sound = _samples(out)
    src_start, src_sound = _samples(src)
    for here, there in ((0.55, 0.55), (1.55, 0.55)):  # 0.55-0.95 s of the source, twice
        i, j = round((here - start) * 48000), round((there - src_start) * 48000)
        assert np.abs(sound[i : i + 19200] - src_sound[j : j + 19200]).max() < 1e-3, here


def test_live_sources_record_without_sound(tmp_path):
    loop = _loop("demo")
    try:
        loop._start_recording(cmd.StartRecording(tmp_path / "demo.mp4"))
        assert loop.recorder.active and loop.recorder.audio_from is None
        loop._process_next(record=True)
        loop._stop_recording()
    finally:
        loop._close_source()
    assert probe(tmp_path / "demo.mp4")["audio"] is None
