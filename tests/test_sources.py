"""The sources (eigencam_live.video: camera, files, images, sources): exact rates, timestamps, seeking,
one-line errors for bad input."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from eigencam_live.errors import SourceError
from eigencam_live.video import Capture, FileSource, FolderSource, open_source

from .media import NTSC, pattern, write_clip, write_empty, write_text_as_video, write_truncated


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", frames=24, size=(96, 64), rate=NTSC)


def test_file_source_reports_exact_rate_size_and_count(clip):
    with open_source(str(clip)) as src:
        assert isinstance(src, FileSource)
        info = src.info
        assert (info.kind, info.width, info.height, info.frame_count) == ("file", 96, 64, 24)
        assert info.rate == Fraction(30000, 1001)  # 29.97 stays 29.97, never int(fps)
        assert info.fps == pytest.approx(29.97003)
        assert not info.live and info.seekable and not info.has_audio
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
    assert [f.index for f in frames] == list(range(24))
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8
    assert frames[5].pts == pytest.approx(5 * 1001 / 30000, abs=1e-4)
    assert src.warning is None


def test_a_webcam_that_does_not_exist_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="camera"):
        open_source(7)
    with pytest.raises(SourceError, match="camera"):
        open_source("9")
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("make", ["missing", "empty", "text"])
def test_bad_files_raise_one_line_source_errors(tmp_path, make):
    path = tmp_path / "bad.mp4"
    if make == "empty":
        write_empty(path)
    elif make == "text":
        write_text_as_video(path)
    with pytest.raises(SourceError) as err:
        open_source(str(path))
    message = str(err.value)
    assert "\n" not in message and "bad.mp4" in message


def test_urls_of_schemes_it_cannot_open_are_named_and_a_file_url_is_its_file(tmp_path):
    """ftp://, foo://: 'no such file' said nothing useful; srt:// without FFmpeg's SRT says so; a file
    manager's file:// URL (spaces quoted) opens the file."""
    for url in ("ftp://host/clip.mp4", "foo://bar"):
        with pytest.raises(SourceError, match=r"is not a stream eigencam-live opens; it opens rtsp, .*http"):
            open_source(url)
    clip = write_clip(tmp_path / "my clip.mp4", frames=3)
    with open_source("file://" + str(clip).replace(" ", "%20")) as source:
        assert source.info.name == "my clip.mp4" and source.info.frame_count == 3


def test_a_cut_off_file_yields_what_decodes_and_warns(tmp_path):
    path = write_truncated(tmp_path / "cut.mp4", frames=40, keep=0.5)
    with Capture(open_source(str(path))) as cap:
        frames = list(cap)
        assert 0 < len(frames) < 40
        assert "cut off" in cap.warning and "of 40 frames" in cap.warning


def test_an_mp4_cut_off_before_its_index_is_said_to_be(tmp_path):
    """A trial: an MP4 cut off before its index (written at the end) was said to be "Invalid data
    found when processing input", with no word of why."""
    from eigencam_live.video.files import mp4_without_index

    whole = write_clip(tmp_path / "whole.mp4", frames=12)
    data = whole.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # the index at the end, as most writers put it
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError) as err:
        open_source(str(tmp_path / "cut.mp4"))
    assert str(err.value).endswith("; its index (the moov box) is missing: the file was cut off before its end, "
                                   "or is still being written")
    assert not mp4_without_index(str(whole)) and mp4_without_index(str(tmp_path / "cut.mp4"))
    text = write_text_as_video(tmp_path / "text.mp4")
    with pytest.raises(SourceError) as err:  # not an MP4 inside: nothing said of an index
        open_source(str(text))
    assert "index" not in str(err.value) and not mp4_without_index(str(text))
    photo = tmp_path / "photo.mp4"  # a HEIC photo's boxes (ftyp heic, meta, mdat) hold no moov either (a review)
    photo.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x10meta" + bytes(8)
                      + b"\x00\x00\x00\x10mdat" + bytes(8))
    assert not mp4_without_index(str(photo))


def _testsrc_mp4(path, width: int, height: int, rate: int, seconds: int) -> None:
    """FFmpeg's testsrc2 pattern (real detail for x264) as an H.264 MP4, index first."""
    import av

    with av.open(f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}", format="lavfi") as src, \
            av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for frame in src.decode(video=0):
            frame = frame.reformat(format="yuv420p")
            frame.pts = None
            out.mux(video.encode(frame))
        out.mux(video.encode(None))


def test_a_damaged_packet_mid_file_is_left_out_and_the_rest_decoded(tmp_path):
    """A trial: 64 bytes damaged mid-file ended decoding there (34 frames of the 74 that ffprobe
    decodes, the rest of the video lost). The refused packet is left out, as FFmpeg's tools do."""
    import av

    _testsrc_mp4(tmp_path / "whole.mp4", 320, 240, 25, 3)
    with av.open(str(tmp_path / "whole.mp4")) as c:
        middle = [p.pos for p in c.demux(video=0) if p.size][37]  # where the 38th frame's packet starts
    data = bytearray((tmp_path / "whole.mp4").read_bytes())
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    decodable, refused = 0, 0  # each packet on its own, as ffprobe -count_frames
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "NONE"
        for packet in c.demux(video=0):
            try:
                decodable += len(packet.decode())
            except av.FFmpegError:
                refused += 1
    assert refused >= 1 and decodable >= 70
    with Capture(open_source(str(path))) as cap:
        frames = list(cap)
        assert len(frames) == decodable
        assert cap.warning is None  # not cut off: it ran to its end (its sound is kept to the end)
        assert cap.damage == f"{path} is damaged: 1 video packet could not be decoded and was left out " \
                             "(Invalid data found when processing input)"
    with open_source(str(path)) as source:  # played again (a loop in the app): the same packet, counted once
        for _ in range(2):
            while source.read() is not None:
                pass
            source.seek(0)
        assert source.damage.endswith(": 1 video packet could not be decoded and was left out "
                                      "(Invalid data found when processing input)")
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert frames[-1].pts == pytest.approx(74 / 25)  # to its end


def test_a_damaged_last_packet_is_said(tmp_path):
    """The decoder's threads swallow the error of a damaged last packet: the frame was left out
    without a word (74 of 75, within a container count's rounding). The end is decoded again on one
    thread where fewer frames came than the container counts, and the packet is said."""
    import av

    _testsrc_mp4(tmp_path / "whole.mp4", 320, 240, 25, 3)
    with av.open(str(tmp_path / "whole.mp4")) as c:
        last = [p.pos for p in c.demux(video=0) if p.size][-1]
    data = bytearray((tmp_path / "whole.mp4").read_bytes())
    data[last : last + 64] = bytes(b ^ 0x5A for b in data[last : last + 64])
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    with Capture(open_source(str(path))) as cap:
        frames = list(cap)
        assert len(frames) == 74 and cap.warning is None
        assert cap.damage == f"{path} is damaged: 1 video packet could not be decoded and was left out " \
                             "(Invalid data found when processing input)"
    assert [f.index for f in frames] == list(range(74))
    with Capture(open_source(str(tmp_path / "whole.mp4"))) as cap:  # the file as it was: nothing said
        assert len(list(cap)) == 75 and cap.warning is None and cap.damage is None


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    times = [0.0, 0.03, 0.1, 0.12, 0.3, 0.31, 0.5]
    path = write_clip(tmp_path / "vfr.mp4", pts=times)
    with Capture(open_source(str(path))) as cap:
        got = [f.pts for f in cap]
    assert got == pytest.approx(times, abs=1e-4)


def test_file_seek_returns_the_requested_frame(clip):
    with Capture(open_source(str(clip))) as cap:
        cap.read(timeout=5)
        cap.seek(15)
        frame = cap.read(timeout=5)
        assert frame.index == 15
        assert frame.pts == pytest.approx(15 * 1001 / 30000, abs=1e-4)
        assert [f.index for f in cap] == list(range(16, 24))


def test_a_transports_seek_lands_on_the_frame_asked_for(tmp_path):
    """An MPEG-TS seek lands on the first keyframe after the time asked for (FFmpeg's): a trial's
    pause and seek to frame 69 showed the frame at 3.08 s labelled "69 / 150", and in a file with
    one keyframe every seek showed its last part. Decoding now starts further back where it landed
    late, at last from the start; the frame shown is the one asked for, with its own time."""
    path = write_clip(tmp_path / "one_keyframe.ts", frames=150, rate=Fraction(25), start=1.4)
    src = FileSource(str(path))
    try:
        for index in (69, 31, 0, 149, 120):
            src.seek(index)
            frame = src.read()
            assert (frame.index, frame.pts - src.origin) == (index, pytest.approx(index / 25, abs=1e-4))
            assert np.abs(frame.image.astype(int) - pattern(index)).mean() < 12  # its picture
        src.seek(150)  # past the last frame: the end
        assert src.read() is None
        src.interrupt()  # (stop, from another thread): a seek decoding from the start gives up
        src.seek(120)
        assert src.read() is None
    finally:
        src.close()


FILM = list(itertools.accumulate([0.0] + [(1.0 if i % 2 == 0 else 1.5) * 1001 / 30000 for i in range(59)]))


@pytest.mark.parametrize("name, times", [
    ("gap.ts", [*(i / 25 for i in range(40)), *(i / 25 for i in range(52, 80))]),  # 12 frames lost
    ("film.ts", FILM),  # telecined: steps of 1 and 1.5 frames
])
def test_a_transports_frame_numbers_follow_its_clock_however_a_frame_is_reached(tmp_path, name, times):
    """A trial: after a gap the counter counted frames decoded while a seek counts index / rate,
    so one picture had two numbers, and ← (a seek to the number before) jumped back across the
    gap and showed one picture under several numbers. A transport's frame numbers now follow its
    clock, and a seek into a gap lands on the frame before it: stepping back from the end reaches
    every frame once, in order, under the number reading gave it."""
    rate = Fraction(25) if name == "gap.ts" else Fraction(30000, 1001)
    src = FileSource(str(write_clip(tmp_path / name, pts=times, rate=rate, start=1.4)))
    try:
        read = []
        while (frame := src.read()) is not None:
            read.append((frame.index, round(frame.pts - src.origin, 4)))
        assert [t for _, t in read] == pytest.approx([round(t, 4) for t in times], abs=2e-4)
        if name == "gap.ts":
            assert [i for i, _ in read] == [*range(40), *range(52, 80)]  # the 12 lost are counted
        back, index = [read[-1]], read[-1][0]
        while index > 0 and len(back) <= len(read):
            src.seek(index - 1)
            frame = src.read()
            index = frame.index
            back.append((index, round(frame.pts - src.origin, 4)))
        assert back[::-1] == read
    finally:
        src.close()


def test_folder_and_glob_sources_read_images_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        img = np.full((20, 30, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"img{i}.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    for spec in (str(tmp_path), str(tmp_path / "img*.png")):
        src = open_source(spec, folder_fps=25)
        assert isinstance(src, FolderSource)
        assert (src.info.width, src.info.height, src.info.frame_count, src.info.rate) == (30, 20, 3, 25)
        with Capture(src) as cap:
            frames = list(cap)
        assert [int(f.image[0, 0, 0]) for f in frames] == [20, 40, 200]
        assert [f.pts for f in frames] == pytest.approx([0, 0.04, 0.08])


def test_a_folder_source_gives_each_image_at_its_own_size_and_skips_unreadable_ones(tmp_path):
    """Photos of many sizes are not stretched to the first one's (they were); an unreadable one
    among them is skipped and named, the others shown (the folder ended at it)."""
    sizes = [(40, 30), (20, 60), (33, 17)]
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(tmp_path / f"p{i * 2}.png"), np.full((h, w, 3), 50 * (i + 1), np.uint8))
    (tmp_path / "p1.jpg").write_bytes(b"not a picture")
    (tmp_path / "p3.png").write_bytes(b"")
    source = open_source(str(tmp_path))
    assert (source.info.width, source.info.height, source.info.frame_count) == (40, 30, 5) and source.warning is None
    with Capture(source) as cap:
        frames = list(cap)
    assert [f.image.shape[:2] for f in frames] == [(h, w) for w, h in sizes]
    assert [int(f.image[0, 0, 0]) for f in frames] == [50, 100, 150] and [f.index for f in frames] == [0, 2, 4]
    # each said by the frame after it (the capture reads ahead: a source-wide warning came early)
    assert frames[0].note is None and source.warning is None
    assert [f.note.split(": ")[0] for f in frames[1:]] == ["skipped an unreadable image"] * 2
    assert "p1.jpg" in frames[1].note and "p3.png" in frames[2].note
    (tmp_path / "p5.png").write_bytes(b"")
    (tmp_path / "p6.png").write_bytes(b"x")
    with open_source(str(tmp_path)) as again:
        assert [again.read().index for _ in range(3)] == [0, 2, 4] and again.warning is None
        assert again.read() is None and again.warning == "skipped 2 unreadable images: p5.png, p6.png"  # the last
    (tmp_path / "p0.png").write_bytes(b"")  # the first unreadable too: the next one opens it
    with open_source(str(tmp_path)) as again:
        assert (again.info.width, again.info.height) == (20, 60) and again.read().index == 2
    with pytest.raises(SourceError, match="cannot read image"):
        open_source(str(tmp_path / "p1.jpg"))  # one file: its own error


def test_an_empty_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))


def test_a_folder_source_reads_images_as_annotate_does(tmp_path):
    """One reader for images (eigencam_live.video.images.read_image): the app's folder source lays
    a transparent image over white (it showed the colours its transparent pixels hide) and refuses a
    cut-off JPEG (libjpeg filled it with grey)."""
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., 2], rgba[:, 32:, 3] = 255, 255  # red, its left half transparent
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    with open_source(str(tmp_path)) as source:
        image = source.read().image
    assert np.all(image[:, :32] == 255) and np.all(image[:, 32:] == (0, 0, 255))
    whole = cv2.imencode(".jpg", rgba[..., :3])[1].tobytes()
    (tmp_path / "b.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match="cut off"):
        open_source(str(tmp_path / "b.jpg"))


@pytest.mark.parametrize("name", ["turned.png", "turned.webp", "opaque.webp"])
def test_exif_orientation_is_applied_to_transparent_images_too(tmp_path, name):
    """A phone's picture turned by its EXIF tag (Orientation 6): upright, its transparency with it.
    (The transparent images' decoder dropped the orientation; so did every WebP carrying EXIF.)"""
    from PIL import Image

    from eigencam_live.video.images import read_image

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    if name != "opaque.webp":
        rgba[:, :30, 3] = 0  # the left half transparent
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    picture = Image.fromarray(rgba if name != "opaque.webp" else rgba[..., :3].copy())
    picture.save(tmp_path / name, exif=exif, **({"lossless": True} if name.endswith(".webp") else {}))
    image, alpha, _ = read_image(tmp_path / name)
    assert image.shape == (60, 40, 3)  # upright: taller than wide
    if name == "opaque.webp":
        assert alpha is None
    else:  # the transparent half (left) is now at the top
        assert alpha.shape == (60, 40) and alpha[:30].max() == 0 and alpha[30:].min() == 255
        assert np.all(image[:30] == 255)


def test_a_cut_off_mp4_gives_every_frame_that_decodes(tmp_path):
    """At a cut-off end, frame threading dropped the frames it held: 2 fewer than decode (a 1 s
    clip cut in half: 13 of 15, where ffprobe counts 15). They are decoded again, on one thread."""
    import io

    import av

    _testsrc_mp4(tmp_path / "full.mp4", 320, 180, 30, 1)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    decodable = 0  # each packet on its own, one thread: what ffprobe -count_frames gives
    with av.open(io.BytesIO(data[: len(data) // 2])) as c:
        c.streams.video[0].thread_type = "NONE"
        for packet in c.demux(video=0):
            try:
                decodable += len(packet.decode())
            except av.FFmpegError:
                pass
    with open_source(str(tmp_path / "cut.mp4")) as source:
        pts = [f.pts for f in iter(source.read, None)]
        warning = source.warning
    assert 0 < len(pts) == decodable < 30 and pts == sorted(pts) and len(set(pts)) == len(pts)
    assert f"decoded {decodable} of 30 frames" in warning
    with open_source(str(tmp_path / "cut.mp4")) as source:  # a seek near the end finds the same frames
        for _ in range(3):
            source.read()
        source.seek(decodable - 2)  # (they came again from the 3rd frame on: time ran backwards)
        assert [f.pts for f in iter(source.read, None)] == pts[-2:]
        source.seek(decodable + 5)  # past what decodes: the end, not an error
        assert source.read() is None
