"""The input's audio in the output (issue 12): copied by codec (not by decoder name), and starting
where it started when it has to be re-encoded."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eigencam_live.video import Capture, VideoSink, open_source

from .media import probe, write_clip


def _copy(src, dst):
    with Capture(open_source(str(src))) as cap:
        info = cap.info
        with VideoSink(dst, width=info.width, height=info.height, fps=info.rate, time_base=info.time_base,
                       audio_from=str(src)) as sink:
            for frame in cap:
                sink.write(frame.image, frame.pts)
    return sink


@pytest.mark.parametrize("name, encoder, codec", [
    ("mp3.avi", "libmp3lame", "mp3"),  # decoded by "mp3float": once re-encoded for that name
    ("ac3.mkv", "ac3", "ac3"),
    ("eac3.mkv", "eac3", "eac3"),
    ("opus.mkv", "libopus", "opus"),
    ("flac.mkv", "flac", "flac"),
    ("alac.mkv", "alac", "alac"),
    ("aac.mkv", "aac", "aac"),
])
def test_audio_mp4_can_hold_is_copied_packet_for_packet(tmp_path, name, encoder, codec):
    src = write_clip(tmp_path / name, frames=25, rate=Fraction(25), audio=True, audio_codec=encoder)
    sink = _copy(src, tmp_path / "out.mp4")
    got, want = probe(tmp_path / "out.mp4")["audio"], probe(src)["audio"]
    assert sink.audio_note is None
    assert (got["codec"], got["sample_rate"], got["packets"], got["bytes"]) == \
        (codec, 48000, want["packets"], want["bytes"])
    assert got["onset"] == pytest.approx(want["onset"], abs=1e-3)


@pytest.mark.parametrize("name, encoder, start", [("late.mkv", "pcm_s16le", 0.5), ("late.mov", "pcm_s16le", 1.5)])
def test_reencoded_audio_keeps_its_offset_from_the_video(tmp_path, name, encoder, start):
    src = write_clip(tmp_path / name, frames=60, rate=Fraction(25), audio=True, audio_codec=encoder,
                     audio_start=start)
    want = probe(src)["audio"]
    assert want["onset"] == pytest.approx(start, abs=1e-3)
    sink = _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")["audio"]
    assert got["codec"] == "aac" and "re-encoded from pcm_s16le to AAC" in sink.audio_note
    assert got["onset"] == pytest.approx(start, abs=1e-3)  # the tone starts when it did, not at 0
