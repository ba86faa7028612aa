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


def test_damaged_audio_packets_are_left_out_and_the_rest_is_copied(tmp_path, capsys):
    """ADTS headers that MP4's muxer refuses (channel configuration 0 without a PCE: "not yet
    implemented in FFmpeg") used to fail the whole run; now those packets are left out, the rest of
    the audio is copied, and the run warns and exits 3 like any damaged input."""
    import av

    from eigencam_live.cli import annotate_main

    clip = write_clip(tmp_path / "in.ts", frames=30, audio=True)
    with av.open(str(clip)) as c:
        audio_pid = c.streams.audio[0].id
    data, hit = bytearray(clip.read_bytes()), 0
    for off in range(0, len(data), 188):  # MPEG-TS packets: damage the first ADTS header of 3 audio ones
        pid = ((data[off + 1] & 0x1F) << 8) | data[off + 2]
        at = data.find(b"\xff\xf1", off + 4, off + 188) if pid == audio_pid else -1
        if at > 0 and hit < 3:
            data[at + 2] &= 0xFE
            data[at + 3] &= 0x3F
            hit += 1
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    whole, out = tmp_path / "whole.mp4", tmp_path / "out.mp4"
    fast = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]
    assert annotate_main([str(clip), "-o", str(whole), *fast]) == 0
    assert annotate_main([str(damaged), "-o", str(out), *fast]) == 3
    err = capsys.readouterr().err
    assert "warning: 3 damaged audio packet(s) of damaged.ts left out" in err and "Traceback" not in err
    got, ref = probe(out), probe(whole)
    assert got["frames"] == ref["frames"] == 30 and got["audio"]["packets"] == ref["audio"]["packets"] - 3
