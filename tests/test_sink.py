"""The H.264 writer: exact rate, per-frame timestamps, audio copied unchanged, atomic output."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from eigencam_live.errors import SinkError
from eigencam_live.video import Capture, VideoSink, open_source
from eigencam_live.video.yuv import bgr_to_i420

from .media import NTSC, pattern, probe, write_clip


def _copy(src_path, dst_path, **kwargs):
    with Capture(open_source(str(src_path))) as cap:
        info = cap.info
        with VideoSink(dst_path, width=info.width, height=info.height, fps=info.rate,
                       audio_from=str(src_path) if info.has_audio else None, **kwargs) as sink:
            for frame in cap:
                sink.write(frame.image, frame.pts)
    return sink


def test_ntsc_rate_size_and_frame_count_are_kept(tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=30, size=(96, 64), rate=NTSC)
    out = tmp_path / "out.mp4"
    sink = _copy(src, out)
    assert sink.frames_written == 30
    got, want = probe(out), probe(src)
    assert got["codec"] == "h264" and got["pix_fmt"] == "yuv420p"  # plays in browsers, unlike mp4v
    assert (got["width"], got["height"], got["frames"]) == (96, 64, 30)
    assert got["rate"] == Fraction(30000, 1001)
    assert got["pts"] == pytest.approx(want["pts"], abs=1e-4)
    assert got["audio"] is None


def test_audio_is_copied_unchanged(tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=30, rate=Fraction(25), audio=True)
    out = tmp_path / "out.mp4"
    sink = _copy(src, out)
    got, want = probe(out), probe(src)
    assert want["audio"]["packets"] > 10
    assert got["audio"] == want["audio"]  # codec, sample rate, packet count and bytes
    assert sink.audio_packets == want["audio"]["packets"]
    assert got["rate"] == Fraction(25) and got["frames"] == 30


def test_audio_mp4_cannot_hold_is_reencoded_to_aac(tmp_path):
    src = write_clip(tmp_path / "in.mov", frames=20, rate=Fraction(30), audio=True, audio_codec="pcm_s16le")
    assert probe(src)["audio"]["codec"] == "pcm_s16le"
    out = tmp_path / "out.mp4"
    sink = _copy(src, out)
    got = probe(out)
    assert got["audio"]["codec"] == "aac" and got["audio"]["sample_rate"] == 48000
    assert "re-encoded from pcm_s16le to AAC" in sink.audio_note
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples - 48000 * 20 / 30) <= 2048  # all of it, give or take AAC's frame padding


def test_variable_frame_rate_is_kept(tmp_path):
    times = [0.0, 0.04, 0.05, 0.2, 0.21, 0.5, 0.52, 0.9]
    src = write_clip(tmp_path / "vfr.mp4", pts=times)
    out = tmp_path / "out.mp4"
    _copy(src, out)
    assert probe(out)["pts"] == pytest.approx(times, abs=1e-4)


def test_frames_without_pts_follow_the_nominal_rate(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoSink(out, width=64, height=48, fps=29.97) as sink:
        assert sink.rate == Fraction(30000, 1001)
        for i in range(10):
            sink.write(pattern(i, 64, 48))
    got = probe(out)
    assert got["rate"] == Fraction(30000, 1001)
    assert got["pts"] == pytest.approx([i * 1001 / 30000 for i in range(10)], abs=1e-4)


def test_the_file_appears_only_when_complete(tmp_path):
    out = tmp_path / "out.mp4"
    sink = VideoSink(out, width=64, height=48, fps=25)
    sink.write(pattern(0, 64, 48))
    assert not out.exists() and sink.tmp_path.exists()
    assert sink.tmp_path.parent == out.parent
    assert sink.close() == out
    assert out.exists() and not sink.tmp_path.exists()


def test_abort_and_errors_leave_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoSink(out, width=64, height=48, fps=25) as sink:
            sink.write(pattern(0, 64, 48))
            raise RuntimeError("boom")
    assert not out.exists() and not sink.tmp_path.exists()
    sink = VideoSink(out, width=64, height=48, fps=25)
    with pytest.raises(SinkError, match="no frames"):
        sink.close()
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_finishes_a_playable_partial_file(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoSink(out, width=64, height=48, fps=25) as sink:
            for i in range(5):
                sink.write(pattern(i, 64, 48))
            raise KeyboardInterrupt
    assert probe(out)["frames"] == 5


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(SinkError, match="exists"):
        VideoSink(out, width=64, height=48, fps=25)
    assert out.read_bytes() == b"keep me"
    with VideoSink(out, width=64, height=48, fps=25, overwrite=True) as sink:
        sink.write(pattern(0, 64, 48))
    assert probe(out)["frames"] == 1


def test_never_writes_over_its_audio_input(tmp_path):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    with pytest.raises(SinkError, match="is the input"):
        VideoSink(src, width=96, height=64, fps=25, audio_from=src, overwrite=True)
    assert probe(src)["frames"] == 3


def test_missing_folder_is_a_sink_error(tmp_path):
    with pytest.raises(SinkError, match="does not exist"):
        VideoSink(tmp_path / "nope" / "out.mp4", width=64, height=48, fps=25)


def test_odd_sizes_are_padded_to_even(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoSink(out, width=63, height=47, fps=25) as sink:
        sink.write(np.zeros((47, 63, 3), np.uint8))
    got = probe(out)
    assert (got["width"], got["height"]) == (64, 48)
    assert sink.size_note.startswith("63x47 written as 64x48")


def test_wrong_frame_shape_is_a_value_error(tmp_path):
    with VideoSink(tmp_path / "out.mp4", width=64, height=48, fps=25) as sink:
        with pytest.raises(ValueError, match=r"\(48, 64, 3\)"):
            sink.write(np.zeros((48, 65, 3), np.uint8))
        sink.write(pattern(0, 64, 48))



def _decoded_video_frame(height: int, width: int, seed: int, matrix: int) -> np.ndarray:
    """A frame as a decoder hands it over: random 4:2:0 planes (BT.601 or BT.709, limited range),
    colours well inside what RGB holds (no clipping)."""
    import cv2

    from eigencam_live.video.yuv import to_bgr

    rng = np.random.default_rng(seed)
    smooth = lambda h, w, lo, hi: cv2.resize(rng.integers(lo, hi, (h // 8, w // 8), dtype=np.uint8), (w, h))  # noqa: E731
    planes = np.concatenate([smooth(height, width, 64, 192),
                             smooth(height // 2, width // 2, 112, 144).reshape(height // 4, width),
                             smooth(height // 2, width // 2, 112, 144).reshape(height // 4, width)])
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.colorspace, frame.color_range = matrix, 1
    return to_bgr(frame)


@pytest.mark.parametrize("matrix", [6, 1], ids=["bt601", "bt709"])
def test_decoded_frames_written_losslessly_come_back_unchanged(tmp_path, matrix):
    # crf 0 is lossless H.264, so what comes back is what decoding and the BGR -> YUV 4:2:0
    # conversion keep. Before, FFmpeg's conversions made each pass 1.5 levels darker, and an HD
    # output carried no colour matrix (players take BT.709 there; the pixels were BT.601).
    frames = [_decoded_video_frame(720, 1280, seed, matrix) for seed in range(3)]
    out = tmp_path / "hd.mp4"
    with VideoSink(out, width=1280, height=720, fps=25, crf=0) as sink:
        for image in frames:
            sink.write(image)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (6, 1)  # BT.601, limited
        written = [frame.to_ndarray() for frame in container.decode(stream)]  # the planes as stored
    assert b"colrnclx\x00\x02\x00\x02\x00\x06" in out.read_bytes()  # the tag in the MP4 box too (QuickTime reads it)
    for image, planes in zip(frames, written, strict=True):
        np.testing.assert_array_equal(planes, bgr_to_i420(image))  # lossless: what the sink converted
    with Capture(open_source(str(out))) as cap:
        back = [frame.image for frame in cap]
    assert len(back) == 3
    for image, got in zip(frames, back, strict=True):
        error = got.astype(np.float64) - image
        assert np.abs(error.mean(axis=(0, 1))).max() < 0.1  # no cast, no darkening
        if matrix == 6:  # the same matrix: back to one level
            assert np.abs(error).max() <= 1
        else:  # BT.709 in, BT.601 out: the two roundings of 8-bit YUV
            assert np.sqrt(np.mean(error**2)) < 1.0
