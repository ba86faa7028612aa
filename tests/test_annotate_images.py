"""Images in, images out (issue 12): one annotated image per input, each in its own size and upright
(EXIF orientation), batched by size, with one stats CSV and one heatmaps NPZ for all of them."""

from __future__ import annotations

import csv
import struct
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from eigencam_live.annotate import annotate_images, plan_jobs
from eigencam_live.cli import annotate_main
from eigencam_live.engine import Engine, EngineConfig

from .media import pattern, probe, write_clip

FAST = ["-m", "mobilenet_v3_small", "--weights", "none", "--short-side", "64", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def engine():
    return Engine(EngineConfig(model="mobilenet_v3_small", weights="none", short_side=64, device="cpu"))


def _jpeg_with_orientation(path, image, orientation):
    """A JPEG whose EXIF says how to turn it (6: 90 degrees clockwise to view)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    ifd = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    ifd += b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + ifd
    data = data.tobytes()
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    return path


def _photos(folder):
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), pattern(1, 96, 64))
    cv2.imwrite(str(folder / "b.png"), pattern(2, 96, 64))
    cv2.imwrite(str(folder / "c.png"), pattern(3, 50, 70))
    _jpeg_with_orientation(folder / "d.jpg", pattern(4, 80, 40), 6)
    return folder


def test_a_folder_of_images_becomes_a_folder_of_annotated_images(tmp_path, capsys):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    code = annotate_main([str(src), "-o", str(out), "--stats", str(tmp_path / "s.csv"),
                          "--heatmaps", str(tmp_path / "m.npz"), *FAST])
    assert code == 0
    assert "4 images in " in capsys.readouterr().out
    sizes = {p.name: cv2.imread(str(p)).shape[:2] for p in sorted(out.iterdir())}
    # every image in its own size; the EXIF-rotated one upright (80x40 turned: 40 wide, 80 high)
    assert sizes == {"a.eigencam.png": (64, 96), "b.eigencam.png": (64, 96), "c.eigencam.png": (70, 50),
                     "d.eigencam.png": (80, 40)}
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["file"] for r in rows] == sorted(sizes)
    # and the image each came from, to join the rows to a ground truth (a trial: the output's name alone)
    assert [r["input"] for r in rows] == [str(src / n) for n in ("a.png", "b.png", "c.png", "d.jpg")]
    assert all(0 <= int(r["peak_x"]) < 96 and 0 <= float(r["probability"]) <= 1 for r in rows)
    maps = np.load(tmp_path / "m.npz")
    assert list(maps["files"]) == sorted(sizes) and list(maps["inputs"]) == [r["input"] for r in rows]
    assert maps["maps/c.eigencam.png"].dtype == np.float16 and maps["maps/c.eigencam.png"].max() <= 1


def test_exif_orientation_is_applied_before_the_network(tmp_path, engine):
    upright = pattern(4, 80, 40)
    turned = np.rot90(upright, 1)  # stored turned a quarter counter-clockwise: EXIF 6 puts it back
    src = _jpeg_with_orientation(tmp_path / "photo.jpg", np.ascontiguousarray(turned), 6)
    (job,) = plan_jobs([str(src)], str(tmp_path / "view.png"))
    from eigencam_live.render import RenderConfig

    result = annotate_images(engine, [job], RenderConfig(view="original"), progress=False)
    assert result.written == [job.output] and not result.failed
    got = cv2.imread(str(job.output)).astype(np.int16)
    assert got.shape == upright.shape and np.abs(got - upright).mean() < 8


def test_images_are_independent_of_their_batch(tmp_path, engine):
    """Batched by size, yet each map is what the image alone gives (no video state between them)."""
    folder = _photos(tmp_path / "photos")
    jobs = plan_jobs([str(folder)], str(tmp_path / "together"), stats=str(tmp_path / "t.csv"))
    annotate_images(engine, jobs, batch_size=4, stats=tmp_path / "t.csv", progress=False)
    alone = []
    for i, job in enumerate(jobs):
        (single,) = plan_jobs([str(job.input)], str(tmp_path / f"alone{i}.png"))
        annotate_images(engine, [single], batch_size=1, stats=tmp_path / f"a{i}.csv", progress=False)
        alone += list(csv.DictReader((tmp_path / f"a{i}.csv").open()))
    together = list(csv.DictReader((tmp_path / "t.csv").open()))
    for a, t in zip(alone, together, strict=True):
        assert (a["label"], a["peak_x"], a["peak_y"]) == (t["label"], t["peak_x"], t["peak_y"])
        assert float(a["explained"]) == pytest.approx(float(t["explained"]), abs=1e-4)


def test_image_format_same_keeps_each_inputs_format(tmp_path):
    src = _photos(tmp_path / "photos")
    jobs = plan_jobs([str(src / "*")], str(tmp_path / "out"), image_format="same")
    assert sorted(j.output.name for j in jobs) == ["a.eigencam.png", "b.eigencam.png", "c.eigencam.png",
                                                   "d.eigencam.jpg"]
    jobs = plan_jobs([str(src / "a.png")], image_format="jpg")
    assert jobs[0].output == src / "a.eigencam.jpg"


def test_a_folder_mixing_videos_and_images_does_both(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "p.png"), pattern(0, 96, 64))
    write_clip(folder / "v.mp4", frames=5)
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), "--stats", str(tmp_path / "s.csv"), *FAST]) == 0
    assert cv2.imread(str(tmp_path / "out" / "p.eigencam.png")).shape == (64, 96, 3)
    assert probe(tmp_path / "out" / "v.eigencam.mp4")["frames"] == 5
    assert (tmp_path / "s.csv").exists() and (tmp_path / "s.images.csv").exists()  # the video's, the images'
    # a second run skips the outputs it wrote (no *.eigencam.* taken as input)
    assert annotate_main([str(tmp_path / "out"), "-o", str(tmp_path / "again"), *FAST]) == 1


def test_a_phones_heic_and_avif_photos_and_an_m2ts_clip_in_a_folder_are_annotated(tmp_path, capsys):
    """A trial: an iPhone's .HEIC photos, .AVIF ones and a camera's .m2ts clips were left out of a
    folder's run without a word (exit 0); one named alone came out as a one-frame video."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    folder = tmp_path / "DCIM"
    folder.mkdir()
    picture = pattern(0, 96, 64)
    pillow_heif.register_heif_opener()
    Image.fromarray(picture[:, :, ::-1]).save(folder / "IMG_0001.HEIC", quality=95)
    cv2.imwrite(str(folder / "IMG_0002.AVIF"), picture)
    write_clip(tmp_path / "clip.ts", frames=5)
    (tmp_path / "clip.ts").rename(folder / "00001.m2ts")
    out = tmp_path / "out"
    assert annotate_main([str(folder), "-o", str(out), "--view", "original", *FAST]) == 0
    for name in ("IMG_0001.eigencam.png", "IMG_0002.eigencam.png"):
        got = cv2.imread(str(out / name))
        assert got.shape == (64, 96, 3) and np.abs(got.astype(int) - picture).mean() < 3, name
    # an AVIF turned by its orientation (OpenCV read it sideways)
    if "avif" in Image.registered_extensions().get(".avif", "").lower():
        exif = Image.Exif()
        exif[0x0112] = 6  # 90 degrees clockwise to view
        Image.fromarray(picture[:, :, ::-1]).save(tmp_path / "turned.avif", exif=exif.tobytes(), quality=95)
        assert annotate_main([str(tmp_path / "turned.avif"), "-o", str(out / "turned.png"), *FAST]) == 0
        assert cv2.imread(str(out / "turned.png")).shape == (96, 64, 3)
    assert probe(out / "00001.eigencam.mp4")["frames"] == 5
    assert annotate_main([str(folder / "IMG_0001.HEIC"), "-o", str(out), "--image-format", "same", "-f", *FAST]) == 0
    with Image.open(out / "IMG_0001.eigencam.heic") as im:  # its own format kept
        assert im.format == "HEIF" and im.size == (96, 64)


def test_an_unreadable_image_is_named_and_the_others_are_written(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), pattern(0, 96, 64))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"eigencam-live: error: cannot read image {folder / 'broken.jpg'}: it is not an image (not JPEG, " in err
    assert "dot.png is 1x1 pixels: too small" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.eigencam.png"]
    stats, maps = tmp_path / "s.csv", tmp_path / "m.npz"
    assert annotate_main([str(folder / "broken.jpg"), "-o", str(tmp_path / "x.png"), "--stats", str(stats),
                          "--heatmaps", str(maps), *FAST]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.jpg" in lines[0]
    assert not stats.exists() and not maps.exists()  # no header-only table, no empty NPZ


def test_a_broken_png_is_one_line_without_opencvs_own_log(tmp_path, capfd):
    """OpenCV logs a broken PNG itself ('[ WARN:0@1.5] global grfmt_png.cpp ...', '[ERROR:...]'),
    on the process's stderr beside the tool's own line: the command line turns that log off."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDX" + bytes(20))
    assert annotate_main([str(broken), "-o", str(tmp_path / "x.png"), *FAST]) == 1
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"eigencam-live: error: cannot read image {broken}: its PNG data is damaged"]
    empty = tmp_path / "empty.jpg"  # (a trial: these said no more than "cannot read image")
    empty.write_bytes(b"")
    assert annotate_main([str(empty), "-o", str(tmp_path / "y.png"), *FAST]) == 1
    assert capfd.readouterr().err.strip() == f"eigencam-live: error: cannot read image {empty}: the file is empty"
    for name, data in (("video.png", b"\0\0\0\x20ftypisom" + bytes(40)), ("bm.png", b"BMW is a car\n" * 4)):
        (tmp_path / name).write_bytes(data)  # (a review: "its HEIF data is damaged", "its BMP data is damaged")
        assert annotate_main([str(tmp_path / name), "-o", str(tmp_path / f"o-{name}"), *FAST]) == 1
        assert capfd.readouterr().err.strip().endswith(f"{name}: it is not an image (not JPEG, PNG, WebP, BMP, TIFF, "
                                                       "GIF, AVIF or HEIC data)")
    from PIL import Image

    for name, dtype, what in (("depth.tiff", np.float32, "floating-point numbers"), ("count.tif", np.int32, "32-bit integers")):
        Image.fromarray(np.arange(40 * 50, dtype=dtype).reshape(40, 50)).save(tmp_path / name)  # whole files
        assert annotate_main([str(tmp_path / name), "-o", str(tmp_path / f"o-{name}.png"), *FAST]) == 1
        assert capfd.readouterr().err.strip() == (  # (a trial: "its TIFF data is damaged")
            f"eigencam-live: error: cannot read image {tmp_path / name}: its pixels are {what} (a measurement, such as "
            "a depth map), not colours: 8 or 16 bits per channel are read (convert it to one of those)")


@pytest.mark.parametrize("interrupts", [1, 2])
def test_ctrl_c_while_waiting_for_a_write_keeps_every_written_image_in_the_result(tmp_path, engine, monkeypatch,
                                                                                 interrupts):
    """Ctrl-C arrives while the network's thread waits for a write (and, the second time, while the
    run is being finished): every image on disk is in the result and in the stats, each whole; the
    reads stop near where the run stopped; no read or write thread is left."""
    from eigencam_live.annotate import images

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"p{i:02d}.png"), pattern(i, 96, 64))
    jobs = plan_jobs([str(folder)], str(tmp_path / "out"), image_format="png")
    left = [interrupts]
    reads = []

    class Interrupting:
        """A write's future whose waits raise KeyboardInterrupt, ``interrupts`` times in all, once
        the write is done (as Ctrl-C in the middle of the wait would leave it)."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def _wait(self, get):
            value = get()
            if left[0] > 0:
                left[0] -= 1
                raise KeyboardInterrupt
            return value

        def result(self, timeout=None):
            return self._wait(lambda: self.inner.result(timeout))

        def exception(self, timeout=None):
            return self._wait(lambda: self.inner.exception(timeout))

    real = images.ThreadPoolExecutor

    def executor(workers, thread_name_prefix=""):
        pool = real(workers, thread_name_prefix=thread_name_prefix)
        if "write" in thread_name_prefix:
            submit = pool.submit
            pool.submit = lambda *a, **k: Interrupting(submit(*a, **k))
        return pool

    read_image = images.read_image
    monkeypatch.setattr(images, "ThreadPoolExecutor", executor)
    monkeypatch.setattr(images, "read_image", lambda path: (reads.append(path), read_image(path))[1])
    result = annotate_images(engine, jobs, batch_size=1, stats=tmp_path / "s.csv", progress=False)
    assert result.interrupted and not result.failed and left == [0]
    on_disk = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert 0 < len(on_disk) < 12 and sorted(p.name for p in result.written) == on_disk
    assert [row["file"] for row in csv.DictReader((tmp_path / "s.csv").open())] == on_disk
    for path in result.written:
        assert cv2.imread(str(path)).shape == (64, 96, 3)
    assert len(reads) <= len(on_disk) + 1 + 2 * 2  # the images reached, and at most the read-ahead
    assert not [t for t in threading.enumerate() if t.name.startswith(("annotate-read", "annotate-write"))]


def test_an_image_whose_map_cannot_give_the_component_is_named_and_the_others_and_the_table_are_written(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "square.png"), pattern(0, 64, 64))  # a 2x2 map at short side 64: rank 4
    cv2.imwrite(str(folder / "wide.png"), pattern(1, 192, 64))  # a 2x6 map: rank 12
    stats = tmp_path / "s.csv"
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), "--component", "6", "--stats", str(stats), *FAST]) == 1
    err = capsys.readouterr().err
    assert "square.png" in err and "rank" in err and "Traceback" not in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["wide.eigencam.png"]
    with stats.open() as f:
        assert [row["file"] for row in csv.DictReader(f)] == ["wide.eigencam.png"]


def test_a_cut_off_jpeg_is_named_not_annotated_grey(tmp_path, capsys):
    """libjpeg fills a JPEG's missing end with grey and only warns on stderr: such a file is named
    as cut off and skipped, the whole one beside it annotated (progressive and with a trailer too)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    picture = pattern(0, 160, 120)
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    # a motion photo's video after the end marker: random bytes hold FF DA and FF D9 by chance
    trailer = np.random.default_rng(0).bytes(300_000)
    assert b"\xff\xda" in trailer
    (folder / "whole.jpg").write_bytes(data.tobytes() + trailer)
    (folder / "png.jpg").write_bytes(cv2.imencode(".png", picture)[1].tobytes())  # not JPEG data: read by content
    whole = data.tobytes()
    app0 = 4 + int.from_bytes(whole[4:6], "big")  # two stray bytes after a segment: libjpeg skips them
    (folder / "padded.jpg").write_bytes(whole[:app0] + b"\x00\x00" + whole[app0:])
    ok, prog = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    (folder / "progressive.jpg").write_bytes(prog.tobytes())
    (folder / "cut.jpg").write_bytes(data.tobytes()[: len(data) * 2 // 3])
    assert cv2.imread(str(folder / "cut.jpg")) is not None  # OpenCV alone reads it
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "cut.jpg: the file is cut off" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "padded.eigencam.png", "png.eigencam.png", "progressive.eigencam.png", "whole.eigencam.png"]


def test_images_of_one_name_in_two_folders_keep_a_row_and_a_map_each(tmp_path):
    """a/cat.jpg and b/cat.jpg annotated beside themselves: the shared CSV and NPZ named both
    'cat.eigencam.png', and the NPZ kept one map of the two. Each is named from the outputs' common
    folder (a folder of outputs keeps bare names)."""
    for sub, seed in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        cv2.imwrite(str(tmp_path / sub / "cat.png"), pattern(seed, 96, 64))
    assert annotate_main([str(tmp_path / "a" / "cat.png"), str(tmp_path / "b" / "cat.png"), *FAST,
                          "--stats", str(tmp_path / "s.csv"), "--heatmaps", str(tmp_path / "m.npz")]) == 0
    with (tmp_path / "s.csv").open() as f:
        assert [row["file"] for row in csv.DictReader(f)] == ["a/cat.eigencam.png", "b/cat.eigencam.png"]
    with np.load(tmp_path / "m.npz") as maps:
        assert sorted(maps["files"]) == ["a/cat.eigencam.png", "b/cat.eigencam.png"]
        assert not np.array_equal(maps["maps/a/cat.eigencam.png"], maps["maps/b/cat.eigencam.png"])


def test_a_transparent_image_keeps_its_transparency_and_hides_what_its_transparent_pixels_hold(tmp_path):
    """An RGBA PNG whose left half is transparent (over pure red, which a viewer never shows): the
    network and the picture get it laid over white, and PNG outputs keep its alpha (on both panels
    side by side); a JPEG output, without alpha, shows white there. The red showed before. A trial:
    half-transparent pixels were laid over white and given their alpha again (washed out); an
    output that keeps the alpha is drawn on the image's own colours, and a TIFF's alpha is read."""
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[:, :, :3] = pattern(3, 96, 64)
    rgba[:, :48] = (0, 0, 255, 0)  # BGRA: red, fully transparent
    rgba[:, 48:, 3] = 255
    rgba[10:20, 60:70, 3] = 128  # half transparent
    cv2.imwrite(str(tmp_path / "cut.png"), rgba)
    cv2.imwrite(str(tmp_path / "cut.tif"), rgba)
    for view, name in (("original", "o.png"), ("side-by-side", "s.png"), ("original", "o.jpg")):
        assert annotate_main([str(tmp_path / "cut.png"), "-o", str(tmp_path / name), "--view", view, *FAST]) == 0
    assert annotate_main([str(tmp_path / "cut.tif"), "-o", str(tmp_path / "t.tif"), "--view", "original", *FAST]) == 0
    for name in ("o.png", "t.tif"):  # (Pillow: OpenCV's TIFF reader premultiplies the colours by the alpha)
        out = np.asarray(Image.open(tmp_path / name).convert("RGBA"))[:, :, [2, 1, 0, 3]]
        assert out.shape == (64, 96, 4) and np.array_equal(out[:, :, 3], rgba[:, :, 3])
        assert np.all(out[:, :48, :3] == 255) and np.array_equal(out[:, 48:, :3], rgba[:, 48:, :3])  # half too
    side = cv2.imread(str(tmp_path / "s.png"), cv2.IMREAD_UNCHANGED)
    assert side.shape == (64, 192, 4) and np.array_equal(side[:, 96:, 3], rgba[:, :, 3])
    jpg = cv2.imread(str(tmp_path / "o.jpg"))
    assert jpg.shape == (64, 96, 3) and jpg[:, :40, 2].mean() > 240 and jpg[:, :40, 1].mean() > 240  # white, not red


@pytest.mark.parametrize("ext", ["avif", "heic"])
def test_a_transparent_avif_or_heic_keeps_its_transparency_in_its_own_format(tmp_path, ext):
    """A re-trial: a transparent AVIF annotated with --image-format same came out opaque (AVIF and
    HEIC keep an alpha channel, as PNG does)."""
    if ext == "heic":
        pytest.importorskip("pillow_heif").register_heif_opener()
    elif "avif" not in Image.registered_extensions().get(".avif", "").lower():
        pytest.skip("this Pillow writes no AVIF")
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[:, :, :3] = pattern(3, 96, 64)[:, :, ::-1]  # RGB
    rgba[:, 48:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / f"cut.{ext}", quality=100)
    (tmp_path / "out").mkdir()
    assert annotate_main([str(tmp_path / f"cut.{ext}"), "-o", str(tmp_path / "out"), "--image-format", "same",
                          "--view", "original", *FAST]) == 0
    with Image.open(tmp_path / "out" / f"cut.eigencam.{ext}") as im:
        got = np.asarray(im.convert("RGBA")).astype(int)
    assert got.shape == (64, 96, 4) and got[:, :46, 3].max() <= 2 and got[:, 50:, 3].min() >= 253
    assert np.abs(got[:, 50:, :3] - rgba[:, 50:, :3]).mean() < 4  # (lossy: quality 95)


def test_sixteen_bit_grey_with_a_transparent_value_and_macos_dot_files(tmp_path):
    """A 16-bit grey PNG with a tRNS value came out all white (Pillow's RGBA clips 16 bits at 255);
    macOS's '._NAME.png' beside each file on a foreign disk failed a folder ('cannot read image')."""
    import zlib

    import cv2
    import numpy as np

    from eigencam_live.annotate.jobs import expand_inputs
    from eigencam_live.video.images import read_image

    grey = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    ok, png = cv2.imencode(".png", grey)
    data = png.tobytes()
    chunk = b"tRNS" + (0).to_bytes(2, "big")  # grey value 0 is transparent
    trns = len(chunk[4:]).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")
    at = data.find(b"IDAT") - 4
    (tmp_path / "g16.png").write_bytes(data[:at] + trns + data[at:])
    (tmp_path / "._g16.png").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    assert expand_inputs([str(tmp_path)]) == [tmp_path / "g16.png"]
    image, alpha, _ = read_image(tmp_path / "g16.png")
    assert np.array_equal(image[:, 1:, 1], (grey[:, 1:] >> 8).astype(np.uint8)) and (image[:, 0] == 255).all()
    assert (alpha[:, 0] == 0).all() and (alpha[:, 1:] == 255).all()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_photos_colour_profile_exif_and_dpi_go_into_its_output(tmp_path, suffix):
    """An Adobe RGB or Display P3 photo's profile was dropped (viewers then show its values as
    sRGB), and so were its EXIF (when and where it was taken) and its dpi. Its orientation tag says
    upright now: the pixels are written turned. (A TIFF output failed on an EXIF with the camera's
    own directory, that is on most photos: libtiff cannot write it.)"""
    import skimage.data
    from PIL import Image

    profile = b"ADBE" + bytes(range(256)) * 2  # any bytes: carried, not read
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Canon", 6
    exif.get_ifd(0x8769)[0x9003] = "2021:06:01 12:20:30"  # DateTimeOriginal
    exif.get_ifd(0x8825)[1], exif.get_ifd(0x8825)[2] = "N", (48.0, 51.0, 29.0)  # GPS latitude
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "cat.jpg", quality=95, icc_profile=profile,
                                                 exif=exif.tobytes(), dpi=(300, 300))
    out = tmp_path / f"out{suffix}"
    assert annotate_main([str(tmp_path / "cat.jpg"), "-o", str(out), "--weights", "none", "--view", "original",
                          "--device", "cpu", "-q"]) == 0
    with Image.open(out) as got:
        kept = got.getexif()
        assert got.size == (300, 451) and got.info.get("icc_profile") == profile
        assert kept[0x010F] == "Canon" and kept[0x0112] == 1
        assert kept.get_ifd(0x8769)[0x9003] == "2021:06:01 12:20:30" and kept.get_ifd(0x8825)[1] == "N"
        if suffix != ".webp":
            assert got.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        pixels = np.asarray(got.convert("RGB"))[:, :, ::-1]
    want = cv2.imread(str(tmp_path / "cat.jpg"))  # upright (EXIF applied), BGR
    assert np.abs(pixels.astype(int) - want).mean() < (1.5 if suffix == ".jpg" else 0.01)


def test_metadata_a_format_cannot_hold_is_left_out_alone_and_said(tmp_path, capsys):
    """A PNG's 70 KB EXIF does not fit a JPEG (64 KB at most): its colour profile and dpi went
    with it, without a word."""
    import skimage.data
    from PIL import Image

    profile = b"ADBE" + bytes(range(256)) * 2
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + b"x" * 70_000  # a long UserComment
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "big.png", icc_profile=profile, exif=exif.tobytes(),
                                                 dpi=(300, 300))
    assert annotate_main([str(tmp_path / "big.png"), "-o", str(tmp_path / "out.jpg"), "--weights", "none",
                          "--device", "cpu", "-q"]) == 0
    with Image.open(tmp_path / "out.jpg") as got:
        assert got.info.get("icc_profile") == profile and got.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert not got.getexif()
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and notes[0].startswith("eigencam-live: note: big.png: its EXIF left out: JPEG would not take it")
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "exif.png", exif=exif.tobytes())  # nothing else to keep
    assert annotate_main([str(tmp_path / "exif.png"), "-o", str(tmp_path / "o2.jpg"), "--weights", "none",
                          "--device", "cpu", "-q"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "exif.png: its EXIF left out: JPEG" in notes[0]  # (not "its colour profile, EXIF and dpi")
    # BMP holds the dpi alone: Pillow drops the rest without a word (a trial: nothing was said)
    assert annotate_main([str(tmp_path / "big.png"), "-o", str(tmp_path / "o3.bmp"), "--weights", "none",
                          "--device", "cpu", "-q"]) == 0
    with Image.open(tmp_path / "o3.bmp") as got:
        assert got.info["dpi"] == pytest.approx((300, 300), abs=0.5) and not got.getexif()
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == ["eigencam-live: note: big.png: its colour profile and EXIF left out: BMP cannot hold them"]


def test_what_an_images_output_leaves_out_is_said(tmp_path, capsys):
    """An animated PNG kept its first frame, a 16-bit PNG was written with 8 bits: both silently."""
    import numpy as np
    from PIL import Image

    frames = [Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((24, 32, 3), 40000, np.uint16))
    cv2.imwrite(str(tmp_path / "plain.png"), np.full((24, 32, 3), 40, np.uint8))
    assert annotate_main([str(tmp_path), "-o", str(tmp_path / "out"), "--weights", "none", "--device", "cpu",
                          "-q"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert notes == ["eigencam-live: note: anim.png: 3 frames (animated): only the first is annotated",
                     "eigencam-live: note: deep.png: 16 bits per channel: written with 8"]


def test_what_a_videos_output_cannot_show_is_said():
    from types import SimpleNamespace

    from eigencam_live.video.yuv import colour_note

    def frame(fmt="yuv420p", interlaced=False, trc=1, primaries=1):
        return SimpleNamespace(format=SimpleNamespace(name=fmt), interlaced_frame=interlaced, color_trc=trc,
                               color_primaries=primaries)

    assert colour_note(frame()) is None
    assert colour_note(frame("yuv420p10le")) == "10-bit video is written with 8 bits per channel"
    assert colour_note(frame(interlaced=True)).startswith("interlaced video is written as progressive frames")
    assert colour_note(frame("yuv420p10le", trc=16)).startswith("HDR (PQ) video") and "; 10-bit" in colour_note(
        frame("yuv420p10le", trc=16))


def test_a_tiffs_own_layout_is_not_carried_as_exif(tmp_path):
    """A TIFF's first directory (its size, strips, compression; XMP) went into its output's EXIF,
    stale; 70 KB of XMP made its JPEG output fail; TIFF outputs were written uncompressed."""
    import skimage.data
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[271], info[700] = "Canon", b"<x:xmpmeta>" + b" " * 70_000 + b"</x:xmpmeta>"
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "cat.tif", tiffinfo=info, compression="tiff_lzw")
    for out in ("out.jpg", "out.png", "out.tif"):
        assert annotate_main([str(tmp_path / "cat.tif"), "-o", str(tmp_path / out), "--weights", "none",
                              "--device", "cpu", "-q"]) == 0
        with Image.open(tmp_path / out) as got:
            exif = got.getexif()
            assert exif.get(271) == "Canon" and not {256, 257, 273, 279, 700} & set(exif if out != "out.tif" else ())
            if out == "out.tif":
                assert got.info["compression"] == "tiff_lzw"


def test_skip_existing_annotates_only_the_images_without_an_output(tmp_path, capsys):
    """A trial: a folder annotated again after a photo was added to it was refused as a whole
    ('... exists (use --force ...)'), and --force did every image again. --skip-existing goes on
    where the outputs end (after a stop, too)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), pattern(i, 96, 64))
    out = tmp_path / "out"
    assert annotate_main([str(photos), "-o", str(out), "--stats", str(tmp_path / "s.csv"), *FAST]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cv2.imwrite(str(photos / "p2.png"), pattern(2, 96, 64))
    capsys.readouterr()
    assert annotate_main([str(photos), "-o", str(out), *FAST]) == 1
    assert "--skip-existing" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == sorted(before)
    # a table of the run before is not this run's (it would lose the rows of the images skipped)
    assert annotate_main([str(photos), "-o", str(out), "--skip-existing", "--stats", str(tmp_path / "s.csv"), *FAST]) == 1
    assert "s.csv exists: name this run's tables anew" in capsys.readouterr().err
    assert annotate_main([str(photos), "-o", str(out), "--skip-existing", "--stats", str(tmp_path / "s2.csv"), *FAST]) == 0
    assert "2 inputs skipped: their output exists" in capsys.readouterr().err
    assert (tmp_path / "s2.csv").read_text().count("p2.eigencam.png") == 1
    assert sorted(p.name for p in out.iterdir()) == ["p0.eigencam.png", "p1.eigencam.png", "p2.eigencam.png"]
    assert all((out / name).read_bytes() == data for name, data in before.items())  # left as they were
    assert annotate_main([str(photos), "-o", str(out), "--skip-existing", "--stats", str(tmp_path / "s.csv"),
                          *FAST]) == 0  # nothing left to do: no table written
    assert annotate_main([str(photos), "-o", str(out), "--skip-existing", "--force", *FAST]) == 2  # one or the other


def test_a_bmp_keeps_its_dpi(tmp_path):
    """A trial: a 96 dpi BMP came out with none (JPEG, PNG, WebP and TIFF kept theirs)."""
    Image.fromarray(pattern(1, 96, 64)[:, :, ::-1]).save(tmp_path / "scan.bmp", dpi=(96, 96))
    assert annotate_main([str(tmp_path / "scan.bmp"), "--image-format", "same", *FAST]) == 0
    with Image.open(tmp_path / "scan.eigencam.bmp") as out:
        assert out.size == (96, 64) and tuple(round(d) for d in out.info["dpi"]) == (96, 96)


def test_a_tiff_without_a_resolution_gives_outputs_without_one(tmp_path):
    """A trial: Pillow reads a TIFF without resolution tags as 1 dpi, and its outputs said so."""
    Image.fromarray(pattern(1, 96, 64)[:, :, ::-1]).save(tmp_path / "scan.tiff")
    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("tiff", "jpg", "png"):
        assert annotate_main([str(tmp_path / "scan.tiff"), "-o", str(out / f"scan.{fmt}"), *FAST]) == 0
        with Image.open(out / f"scan.{fmt}") as got:
            assert got.size == (96, 64)
            if fmt == "tiff":  # no XResolution written (Pillow reads its absence as 1 dpi again)
                assert 282 not in got.tag_v2
            else:
                assert got.info.get("dpi") in (None, (72, 72)), (fmt, got.info)


def test_skip_existing_names_the_images_table_as_the_plan_did_beside_a_video_skipped(tmp_path):
    """A review: the plan named the images' table for every video input (s.images.csv), the run
    for the videos left after skipping (s.csv, the video's own): it refused midway, an image
    written and left without a row."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_clip(folder / "v.mp4", frames=2)
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), "--stats", str(tmp_path / "s.csv"), *FAST]) == 0
    cv2.imwrite(str(folder / "p0.png"), pattern(0, 96, 64))
    assert annotate_main([str(folder), "-o", str(tmp_path / "out"), "--skip-existing", "--stats", str(tmp_path / "s.csv"),
                          *FAST]) == 0
    assert "p0.eigencam.png" in (tmp_path / "s.images.csv").read_text()


def test_a_library_user_names_files_by_str_and_one_input_alone_and_nothing_is_overwritten(tmp_path, engine):
    """A library trial: plan_jobs("a.jpg") read the str a character at a time ("no such file: i");
    a Job of str paths failed deep inside ('str' object has no attribute 'is_dir'); and
    annotate_images replaced an existing file by default, where annotate_file refuses to."""
    from eigencam_live.annotate import Job, annotate_file

    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), pattern(3, 96, 64))
    (job,) = plan_jobs(str(photo), tmp_path / "out.png")  # one input alone, paths as Path or str
    assert (job.input, job.output) == (photo, tmp_path / "out.png")
    job = Job(str(photo), str(tmp_path / "kept.png"))
    assert job.input == photo and job.output == tmp_path / "kept.png"
    job.output.write_bytes(b"precious")
    result = annotate_images(engine, [job], progress=False)
    assert result.written == [] and job.output.read_bytes() == b"precious"
    assert result.failed == [(photo, f"{job.output} exists: left as it is (overwrite=True replaces it)")]
    clip = write_clip(tmp_path / "c.mp4", frames=4)
    done = annotate_file(engine, Job(str(clip), str(tmp_path / "c.out.mp4")), progress=False)
    assert done.frames == 4 and probe(tmp_path / "c.out.mp4")["frames"] == 4
