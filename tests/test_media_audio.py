"""The input's audio in the output (issue 12): copied by codec (not by decoder name), and starting
where it started when it has to be re-encoded."""

from __future__ import annotations

from fractions import Fraction

import av
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
    assert "warning: 3 damaged audio packets of damaged.ts left out" in err and "Traceback" not in err
    got, ref = probe(out), probe(whole)
    assert got["frames"] == ref["frames"] == 30 and got["audio"]["packets"] == ref["audio"]["packets"] - 3


def _pcm_mov(path, *, layout="stereo", rate=48000, tones=(440.0, 660.0), holes=(), seconds=2.0):
    """A 25 fps clip (MOV, MKV: by ``path``) with PCM audio: channel k a sine of ``tones[k]`` Hz; ``holes``: ``(start, end)``
    seconds of the audio that are missing (its packets are not written: in MKV, the timestamps jump;
    MOV closes such holes up)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=rate, layout=layout)
        t = np.arange(int(seconds * rate)) / rate
        samples = np.stack([6000 * np.sin(2 * np.pi * f * t) for f in tones], 1).astype(np.int16)
        for i in range(int(seconds * 25)):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 3 * i % 256, np.uint8), format="rgb24")
            picture.pts = i
            out.mux(video.encode(picture))
        step = rate // 25
        for k in range(0, len(t), step):
            if any(a <= k / rate < b for a, b in holes):
                continue
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[k:k + step]).reshape(1, -1), format="s16",
                                               layout=layout)
            chunk.sample_rate, chunk.pts = rate, k
            out.mux(audio.encode(chunk))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return path


def _tones(path):
    """``{channel name: its strongest frequency (Hz)}`` and the audio ``(sample rate, samples
    as (channels, n) float)`` of ``path``'s first audio track, on its own time grid."""
    import av
    import numpy as np

    from eigencam_live.video.audio import _decoded_layout, _reordered

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        # (reading a layout through PyAV needs the care the sink takes: see _decoded_layout)
        layout, order = _decoded_layout(stream.codec_context)
        names = [ch.name for ch in av.AudioLayout(layout).channels]
        rate = stream.codec_context.sample_rate
        packed = av.AudioResampler(format="flt", layout=layout, rate=rate)  # (PyAV misreads 8 planes)
        start, pieces = None, []
        for frame in c.decode(stream):
            frame = _reordered(frame, order) if order else frame
            start = frame.time if start is None else start
            pieces += [f.to_ndarray().reshape(-1, len(names)).T for f in packed.resample(frame)]
    data = np.concatenate(pieces, 1).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data[:, rate // 4: rate // 4 + rate // 2], axis=1))
    return {n: round(int(np.argmax(s)) * 2.0) for n, s in zip(names, spectrum, strict=True)}, (rate, data, start)


def test_eight_channel_pcm_in_a_mov_channel_order_is_reencoded_channel_for_channel(tmp_path):
    """PCM 7.1 in a .mov whose 'chan' atom says L R C LFE Ls Rs Rls Rrs (ffmpeg 5's, cameras'):
    FFmpeg reads that as a custom channel order, and PyAV's copies of such a layout freed its map
    once per decoded frame: the process aborted ('double free or corruption', exit 134). Each
    channel now reaches the AAC output under its own name."""
    tones = (200, 300, 400, 100, 600, 700, 800, 900)  # written FL FR FC LFE BL BR SL SR (AAC's LFE: < 120 Hz)
    src = _pcm_mov(tmp_path / "in.mov", layout="7.1", tones=tones)
    data = src.read_bytes()
    native = bytes.fromhex("6368616e" "00000000" "00010000" "0000063f")  # 'chan': the channel bitmap of 7.1
    assert data.count(native) == 1
    src.write_bytes(data.replace(native, bytes.fromhex("6368616e" "00000000" "00800008" "00000000")))  # MPEG_7_1_C
    sink = _copy(src, tmp_path / "out.mp4")
    got, _ = _tones(tmp_path / "out.mp4")
    # the file now says its 5th-8th channels are SL SR BL BR: those names keep those tones
    assert got == {"FL": 200, "FR": 300, "FC": 400, "LFE": 100, "SL": 600, "SR": 700, "BL": 800, "BR": 900}
    assert "re-encoded from pcm_s16le to AAC" in sink.audio_note


def test_a_hole_in_reencoded_audio_is_kept_as_silence_not_closed_up(tmp_path):
    """0.8 s of PCM missing in the middle: what follows played 0.8 s early against the picture."""
    import numpy as np

    src = _pcm_mov(tmp_path / "holed.mkv", layout="mono", tones=(440.0,), holes=[(0.8, 1.6)], seconds=3.0)
    _copy(src, tmp_path / "out.mp4")
    (rate, data, start), want = _tones(tmp_path / "out.mp4")[1], _tones(src)[1]
    assert start == pytest.approx(0.0, abs=1e-3)
    block = rate // 100  # loudness over 10 ms
    loud = np.sqrt((data[0, : len(data[0]) // block * block].reshape(-1, block) ** 2).mean(1)) > 0.02
    hole = np.flatnonzero(~loud[: len(loud) - 5]) / 100  # seconds (the encoder's last frame may fade)
    assert hole.min() == pytest.approx(0.8, abs=0.03) and hole.max() == pytest.approx(1.6, abs=0.03)
    assert data.shape[1] / rate == pytest.approx(want[1].shape[1] / rate + 0.8, abs=0.05) == pytest.approx(3.0, abs=0.05)


def test_pcm_at_a_rate_aac_does_not_have_is_resampled_not_a_failed_output(tmp_path):
    """192 kHz PCM: the whole video failed ('cannot write ...: Invalid argument')."""
    src = _pcm_mov(tmp_path / "hi.mov", rate=192000, tones=(1000.0, 3000.0), seconds=1.0)
    sink = _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")
    assert got["audio"]["sample_rate"] == 48000 and "from 192 to 48 kHz" in sink.audio_note
    assert _tones(tmp_path / "out.mp4")[0] == {"FL": 1000, "FR": 3000}
    rate, data, _ = _tones(tmp_path / "out.mp4")[1]
    assert rate == 48000 and data.shape[1] / rate == pytest.approx(1.0, abs=0.03)


def test_eight_planar_channels_are_reordered_and_silenced_without_crashing(tmp_path):
    """PyAV gives a planar frame of 8 channels a 9th plane (and from_ndarray reads it): filling a
    hole in 7.1 DTS or Vorbis (decoded planar) crashed the process; reordering raised."""
    import av
    import numpy as np

    from eigencam_live.video.audio import AudioTrack, _reordered

    n = 64
    frame = av.AudioFrame(format="fltp", layout="7.1", samples=n)
    for c in range(8):
        frame.planes[c].update(np.full(n, c + 1, np.float32).tobytes() + bytes(frame.planes[c].buffer_size - 4 * n))
    frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
    order = [7, 6, 5, 4, 3, 2, 1, 0]
    got = _reordered(frame, order).to_ndarray().reshape(n, 8)
    assert (got == np.arange(8, 0, -1, dtype=np.float32)).all()
    src = _pcm_mov(tmp_path / "in.mkv", layout="7.1", tones=(100, 200, 300, 100, 400, 500, 600, 700), seconds=0.2)
    with av.open(str(tmp_path / "out.mp4"), "w") as out:
        track = AudioTrack(out, str(src))
        track._next = 0
        track._silence(frame, 4800)  # 0.1 s
        track.finish()
        track.close()
        assert track.packets > 0



def test_audio_muxed_after_a_long_stretch_of_picture_is_probed_further_and_copied(tmp_path, monkeypatch):
    """An MPEG-TS with its sound long after its picture (a poor muxer's interleaving): FFmpeg's first
    look sees no audio packet and gives its stream no sample rate. Copied as it was, the MP4's
    header could not be written and the whole output failed ("Invalid argument"); now the input is
    probed further, and where that still finds nothing the audio alone is dropped, said."""
    import av

    from eigencam_live.video import transport

    src = write_clip(tmp_path / "late.ts", frames=500, rate=Fraction(25), audio=True, start=10.0)
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.sample_rate == 0  # the case: not known at a first look
    want = probe(src)["audio"]
    sink = _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")
    assert sink.audio_note is None
    assert (got["frames"], got["audio"]["codec"], got["audio"]["sample_rate"], got["audio"]["packets"]) == \
        (500, "aac", 48000, want["packets"])
    assert got["audio"]["onset"] == pytest.approx(got["pts"][0], abs=1e-3) == 10.0  # with the picture, as in the input

    monkeypatch.setattr(transport, "PROBE_SECONDS", 1)
    monkeypatch.setattr(transport, "PROBE_BYTES", 1 << 16)
    sink = _copy(src, tmp_path / "dropped.mp4")
    got = probe(tmp_path / "dropped.mp4")
    assert got["frames"] == 500 and got["audio"] is None
    assert sink.audio_note == ("audio (aac) dropped: its sample rate and channels are not known within "
                               "the first 0 MB of the input (no audio packet there)")
    monkeypatch.setattr(transport, "PROBE_BYTES", 1 << 30)  # (the file is smaller: it was read whole)
    monkeypatch.setattr(transport, "PROBE_SECONDS", 0)
    sink = _copy(src, tmp_path / "dropped2.mp4")
    assert sink.audio_note == ("audio (aac) dropped: its sample rate and channels are not known in the whole "
                               "input (no audio packet there)")


def test_a_transport_clock_from_0_with_aac_priming_keeps_its_sound_at_the_start(tmp_path):
    """An MPEG-TS whose clock starts at 0: AAC's priming packet starts 1920 ticks before it, and the
    33-bit clock gives it 2**33 - 1920 (95443.7 s). Copied as it was, the output's sound started at
    95443.7 s (silent in any player); it is unwrapped to -0.021 s, before the picture as it was."""
    import av

    src = write_clip(tmp_path / "zero.ts", frames=400, rate=Fraction(25), audio=True)
    with av.open(str(src)) as c:
        first = next(p for p in c.demux(c.streams.audio[0]) if p.size)
        assert (first.dts, c.streams.video[0].start_time) == (2**33 - 1920, 0)  # the case
    want = probe(src)["audio"]
    sink = _copy(src, tmp_path / "out.mp4")
    got = probe(tmp_path / "out.mp4")["audio"]
    assert sink.audio_note is None and sink.audio_damaged == 0
    assert (got["packets"], got["start"]) == (want["packets"], 0.0)
    assert got["onset"] == pytest.approx(want["onset"], abs=1e-3)


def test_the_sound_ends_where_the_inputs_edit_list_cuts_its_last_packet(tmp_path):
    """An MP4 whose last AAC packet is whole (1024 samples) but whose track ends 512 samples into it
    (its edit list: the encoder's padding, as cameras write it): the copy played the padding too
    (5.3 ms on the car sample). The output's last packet is cut where the input's track ends."""
    from eigencam_live.cli import annotate_main

    clip = write_clip(tmp_path / "clip.mp4", frames=20, rate=Fraction(25), audio=True)
    data = bytearray(clip.read_bytes())
    stts = data.rindex(b"stts")  # the audio track's (after the video's): entries (count, delta)
    count = int.from_bytes(data[stts + 8: stts + 12], "big")
    last = stts + 12 + 8 * (count - 1) + 4
    assert int.from_bytes(data[last: last + 4], "big") == 512  # (the encoder cut it; a camera's is whole)
    data[last: last + 4] = (1024).to_bytes(4, "big")
    clip.write_bytes(bytes(data))
    with av.open(str(clip)) as c:
        a = c.streams.audio[0]
        end = (a.start_time or 0) + a.duration
        packets = [p for p in c.demux(a) if p.size]
        assert packets[-1].pts + packets[-1].duration == end + 512  # the input's track ends inside it
    assert annotate_main([str(clip), "-o", str(tmp_path / "out.mp4"), "--view", "original", "-m", "mobilenet_v3_small",
                          "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]) == 0
    with av.open(str(tmp_path / "out.mp4")) as c:
        a = c.streams.audio[0]
        assert float(((a.start_time or 0) + a.duration) * a.time_base) == pytest.approx(float(end * Fraction(1, 48000)), abs=1e-6)
