"""Still images of a folder or a glob, played as a video."""

from __future__ import annotations

import glob as globlib
import os
import re
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo, as_rate

__all__ = ["IMAGE_EXTENSIONS", "FolderSource", "heif_opener", "image_metadata", "image_size", "read_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".heic", ".heif")
#: A phone's photos (HEIC: iPhones'), read by Pillow with the pillow-heif package.
_HEIF = (".heic", ".heif")


def heif_opener() -> bool:
    """Let Pillow open HEIC/HEIF photos (once); ``False`` where pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _natural_key(path: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


class FolderSource(FrameSource):
    """Images of a folder or a glob, in natural order (``img2`` before ``img10``).

    Each frame is its image at its own size (``info`` gives the first one's); pts = index / fps,
    index = the image's place among :attr:`files`. An image that cannot be read is skipped, and
    named in the :attr:`~eigencam_live.video.Frame.note` of the frame after it.
    """

    def __init__(self, spec: str, *, fps: float | Fraction = 30) -> None:
        if os.path.isdir(spec):
            files = [os.path.join(spec, n) for n in os.listdir(spec)]
        else:
            files = globlib.glob(os.path.expanduser(spec))
        files = sorted((f for f in files if _is_listed(f) and os.path.isfile(f)), key=_natural_key)
        if not files:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {spec}")
        self.files = files
        self._failed: SourceError | None = None
        self._unreadable: set[int] = set()  # indices of the files that could not be read
        self._next = 0
        self._first = first = self._load_next()
        if first[0] is None:
            raise self._failed if len(files) == 1 else SourceError(f"no readable images in {spec}: {first[2]}")
        height, width = first[1].shape[:2]
        self.info = SourceInfo("folder", spec, width, height, as_rate(fps), len(files), False, True, spec)

    def _load_next(self) -> tuple[int | None, np.ndarray | None, str | None]:
        """``(index, image, note)`` of the next readable image from :attr:`_next` on (a transparent one
        laid over white; index and image ``None`` past the last); ``note`` names the unreadable
        images skipped on the way, ``None`` where there were none."""
        skipped: list[tuple[str, SourceError]] = []
        while self._next < len(self.files):
            index = self._next
            self._next += 1
            try:
                return index, read_image(Path(self.files[index]))[0], _skipped_note(skipped)
            except SourceError as exc:
                self._failed = exc
                self._unreadable.add(index)
                skipped.append((self.files[index], exc))
        return None, None, _skipped_note(skipped)

    def read(self) -> Frame | None:
        index, image, note = self._first or self._load_next()
        self._first = None
        if index is None:
            if note:  # the last images: no frame after them to carry it
                self.warning = note
            return None
        return Frame(image, index, index / float(self.info.rate), time.monotonic(), note=note)

    def largest_size(self, most: int = 4000) -> tuple[int, int]:
        """``(width, height)``: the largest width and the largest height among the images, as they
        are shown (upright), read from their headers (no pixels decoded: 0.1 ms or so each); of a
        folder of more than ``most``, among ``most`` spread over it (another may be larger: it is
        then shrunk to fit). A recording of the folder is made at this size."""
        files = self.files
        step = max(1, -(-len(files) // most))
        sizes = [self._size(i) for i in range(0, len(files), step)] + [(self.info.width, self.info.height)]
        return max(w for w, _ in sizes if w), max(h for _, h in sizes if h)

    def _size(self, index: int) -> tuple[int, int]:
        return (0, 0) if index in self._unreadable else image_size(Path(self.files[index])) or (0, 0)

    def seek(self, index: int) -> None:
        """Frame ``index`` next; onto an image known to be unreadable, the readable one before it
        (a step back over it would land on the one after it again, for good)."""
        self._first = None
        index = min(max(0, int(index)), len(self.files))
        while index in self._unreadable and index > 0:
            index -= 1
        self._next = index


def _skipped_note(skipped: list[tuple[str, SourceError]]) -> str | None:
    if len(skipped) <= 1:
        return f"skipped an unreadable image: {skipped[0][1]}" if skipped else None
    names = ", ".join(os.path.basename(path) for path, _ in skipped[:3])
    return f"skipped {len(skipped)} unreadable images: {names}" + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")


#: Tags of a TIFF's first directory (and a JPEG's) that say how its pixels are stored, and blocks
#: an output would carry stale or too large for an EXIF segment (XMP, Photoshop's, the ICC tag).
_LAYOUT_TAGS = frozenset({256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 330, 338,
                          339, 513, 514, 700, 34377, 34675})


def image_metadata(path: Path) -> tuple[dict | None, str | None]:
    """What a photo carries beside its pixels, and what an 8-bit picture of its first frame loses:
    ``(metadata, note)``.

    ``metadata``, as Pillow's ``save`` takes it (``None``: none, or Pillow cannot read the file):
    its colour profile (``icc_profile``: without it an Adobe RGB or Display P3 photo's values are
    shown as sRGB), its EXIF (when and where it was taken, the camera; its orientation set to
    upright, as the pixels are read) and its resolution (``dpi``). ``note``: more frames or pages
    than the first, more than 8 bits per channel (``None``: nothing lost)."""
    from PIL import Image

    if path.suffix.lower() in _HEIF:
        heif_opener()
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            for tag in _LAYOUT_TAGS.intersection(exif):  # how the input's pixels were stored, not the photo's
                del exif[tag]
            if 0x0112 in exif:  # Orientation: the pixels are already turned upright
                exif[0x0112] = 1
            dpi = im.info.get("dpi")
            if im.format == "TIFF" and 282 not in im.tag_v2:  # no XResolution: Pillow's made-up (1, 1)
                dpi = None  # (a trial: its outputs said 1 dpi, a 640 px picture 640 inches wide)
            found = {"icc_profile": im.info.get("icc_profile"), "exif": exif.tobytes() if len(exif) else None,
                     "dpi": dpi}
            frames = getattr(im, "n_frames", 1)
            bits = max(getattr(im, "tag_v2", {}).get(258, (8,)) or (8,)) if im.format == "TIFF" else 8
            if im.format == "PNG":
                with open(path, "rb") as f:
                    bits = f.read(25)[24]  # IHDR's bit depth
    except Exception:  # noqa: BLE001 - no metadata to keep where Pillow cannot read the file
        return None, None
    notes = []
    if frames > 1 and im.format != "MPO":  # (a phone's JPEG with a gain map or a depth map: MPF, not frames)
        notes.append(f"{frames} {'pages' if im.format == 'TIFF' else 'frames (animated)'}: only the first is annotated")
    if bits > 8:
        notes.append(f"{bits} bits per channel: written with 8")
    return {k: v for k, v in found.items() if v} or None, "; ".join(notes) or None


def _is_listed(path: str) -> bool:
    """An image a folder lists as one: by its extension, and not a hidden file (macOS keeps each
    file's metadata beside it on foreign disks as ``._NAME.jpg``, which is no picture)."""
    return path.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(path).startswith(".")


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of an image as :func:`read_image` turns it (EXIF orientation applied),
    from its header; ``None`` where Pillow cannot read it."""
    from PIL import Image

    if path.suffix.lower() in _HEIF and not heif_opener():
        return None
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.format == "TIFF":  # as stored: Pillow's size may already be turned (a review: turned twice)
                width, height = im.tag_v2.get(256, width), im.tag_v2.get(257, height)
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # a quarter turn: the sides swap
    except Exception:  # noqa: BLE001 - not an image Pillow reads
        return None
    return (height, width) if turned else (width, height)


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(H, W, 3)`` uint8 BGR as a viewer shows it (EXIF orientation applied; grey images made
    BGR), and where it has transparent pixels (else ``None`` and ``None``) its ``(H, W)`` uint8
    alpha and its own colours: the picture is then laid over white, as a viewer shows it, not the
    colours its transparent pixels hide; its own colours are what an output that keeps the alpha
    is drawn on (else they would be laid over white twice). Raises :class:`SourceError` naming the
    file (unreadable, or under 2x2 like the videos ``annotate`` refuses)."""
    try:
        data = path.read_bytes()  # read once: decoded, and a JPEG's end checked
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_complete(data):
        # libjpeg would fill what is missing with grey (or OpenCV give up): not the picture
        raise SourceError(f"cannot read image {path}: the file is cut off (its JPEG data ends early)")
    heif = path.suffix.lower() in _HEIF
    if heif and not heif_opener():
        raise SourceError(f"cannot read image {path}: HEIC photos need the pillow-heif package (pip install pillow-heif)")
    # HEIC and AVIF: Pillow's, which turns them upright and keeps their alpha (OpenCV reads no HEIC,
    # and an AVIF without its rotation or its alpha); where Pillow reads no AVIF (before 11.3), OpenCV
    pillow = heif or data[4:12] in (b"ftypavif", b"ftypavis") or _may_have_alpha(data)
    image, alpha, own = _with_alpha(data) if pillow else (None, None, None)
    if image is None:  # IMREAD_COLOR applies the EXIF orientation (imdecode as imread)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise SourceError(f"cannot read image {path}: {_why_unreadable(data)}")
    if min(image.shape[:2]) < 2:
        raise SourceError(f"{path} is {image.shape[1]}x{image.shape[0]} pixels: too small to annotate (at least 2x2)")
    return image, alpha, own


#: A TIFF file's first bytes (little- and big-endian).
_TIFF = (b"II*\x00", b"MM\x00*")


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
#: ISO media files' major brands (after ``ftyp``) that name a photo, not a video.
PHOTO_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", **dict.fromkeys(_HEIF_BRANDS, "HEIF")}


def _why_unreadable(data: bytes) -> str:
    """Why neither OpenCV nor Pillow decoded ``data``, in a few words (a trial: an empty file and a
    text file named .jpg were both "cannot read image", where a cut-off JPEG said why)."""
    if not data:
        return "the file is empty"
    kinds = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
    kind = next((k for head, k in kinds.items() if data.startswith(head)), None)
    if kind is None and data[:2] == b"BM" and data[6:10] == bytes(4):  # (its reserved fields: a text file may start "BM")
        kind = "BMP"
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None and data[4:8] == b"ftyp":  # ISO media: a photo's brands, not a video's (an MP4 renamed .png)
        kind = PHOTO_BRANDS.get(data[8:12])
    if kind == "TIFF":  # whole, but of numbers no picture is made of (a depth map, a measurement)
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                mode = im.mode
        except Exception:  # noqa: BLE001 - damaged indeed
            mode = None
        if mode is not None and mode.startswith(("F", "I")) and not mode.startswith("I;16"):  # (F, I, I;32...)
            what = "floating-point numbers" if mode.startswith("F") else "32-bit integers"
            return (f"its pixels are {what} (a measurement, such as a depth map), not colours: "
                    "8 or 16 bits per channel are read (convert it to one of those)")
    if kind is not None:
        return f"its {kind} data is damaged"
    return "it is not an image (not JPEG, PNG, WebP, BMP, TIFF, GIF, AVIF or HEIC data)"


def _may_have_alpha(data: bytes) -> bool:
    """A PNG with an alpha channel or a transparent colour (``tRNS``), or a WebP whose header says
    it has alpha: read from their headers, so that only those take the slower way; any TIFF (its
    extra samples are deep in its tags; OpenCV's colour read drops them)."""
    if data[:4] in _TIFF:
        return True
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return len(data) > 25 and (data[25] in (4, 6) or b"tRNS" in data[: data.find(b"IDAT")])
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 25:
        return False
    if data[12:16] == b"VP8X":  # extended: a flag for alpha
        return bool(data[20] & 0x10)
    return data[12:16] == b"VP8L" and bool((int.from_bytes(data[21:25], "little") >> 28) & 1)  # lossless


def _with_alpha(data: bytes) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(BGR uint8 laid over white, alpha uint8, its own BGR)`` of an image with transparent
    pixels, EXIF orientation applied to all (Pillow: OpenCV applies it only where it drops the
    alpha); ``(BGR, None, None)`` where every pixel is opaque (``None`` for a TIFF: OpenCV reads
    it, as any image), ``(None, None, None)`` where Pillow cannot read it."""
    import io

    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I"):  # 16-bit grey: Pillow's RGBA clips it at 255 (all white)
                grey = np.asarray(im)
                key = im.info.get("transparency")  # its one transparent value (tRNS)
                alpha = np.where(grey == key, 0, 255).astype(np.uint8) if key is not None else np.full(grey.shape, 255, np.uint8)
                rgba = np.dstack([(grey >> 8).astype(np.uint8)] * 3 + [alpha])  # (as OpenCV reads 16 bits)
            else:
                rgba = np.asarray(im.convert("RGBA"))
    except Exception:  # noqa: BLE001 - a file Pillow cannot read: OpenCV's say, as for any image
        return None, None, None
    alpha = rgba[:, :, 3]
    bgr = rgba[:, :, 2::-1].copy()
    if alpha.min() == 255:  # (a TIFF's bits and inks as OpenCV reads them, as any opaque TIFF)
        return (None if data[:4] in _TIFF else bgr), None, None
    a = alpha[:, :, None].astype(np.float32) / 255.0
    over_white = bgr.astype(np.float32) * a + 255.0 * (1.0 - a)
    bgr[alpha == 0] = 255  # what no viewer shows stays hidden: white, as laid over white
    return np.rint(over_white).astype(np.uint8), np.ascontiguousarray(alpha), bgr


#: In a JPEG's entropy-coded data, the next marker: ``FF`` then neither ``00`` (a stuffed data
#: byte), a restart marker ``D0``-``D7`` nor another ``FF`` (fill).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG file's ``data`` reach its end marker (``FF D9``), its segments walked from the start
    (the entropy-coded data of each scan skipped to the next marker). Data after the end marker (a
    camera's trailer, a motion photo's video) is not read; a file that is not JPEG data (a PNG
    named .jpg) is not this check's business: OpenCV read it by its content."""
    if not data.startswith(b"\xff\xd8"):
        return True
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # stray bytes between segments (old cameras): libjpeg skips to the next marker
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, restart, TEM: no length
            i += 1 if marker == 0xFF else 2
            continue
        if i + 4 > n:
            return False
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDA:  # a scan: its data runs to the next marker
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                return False
            i = found.start()
    return False
