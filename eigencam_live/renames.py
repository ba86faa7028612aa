"""Renaming a finished file into place without ever replacing a file someone else put there."""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

__all__ = ["free_path", "rename_no_replace", "rename_to_free_name"]

#: ``os.link`` errors that mean the file system has no hard links (FAT, exFAT, some network shares).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV})


def rename_no_replace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists, atomically: two runs that finish at once
    cannot both get the name, and neither replaces the other's file.

    A hard link then an unlink where the file system has hard links (``link`` fails when the name
    is taken); elsewhere an exclusive create of ``dst`` (which fails the same way) replaced at once.

    Raises:
        FileExistsError: ``dst`` exists; ``src`` is left as it was.
        OSError: any other failure.
    """
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: claim the name exclusively, then put the file over our own claim.
        with open(dst, "xb"):
            pass
        try:
            os.replace(src, dst)
        except OSError:
            os.unlink(dst)
            raise
        return
    os.unlink(src)


def rename_to_free_name(src: Path, dst: Path) -> Path:
    """Rename ``src`` to ``dst``, or where that name is taken (a file made meanwhile: another app
    recording in the same second) to ``STEM-2``, ``STEM-3``...: the first free one, claimed
    atomically (:func:`rename_no_replace`). Returns the name it got.

    Raises:
        OSError: a failure other than a taken name; ``src`` is left as it was.
    """
    for name in _numbered(dst):
        try:
            rename_no_replace(src, name)
        except FileExistsError:
            continue
        return name
    raise AssertionError("unreachable")


def free_path(path: Path) -> Path:
    """``path``, or the first of ``STEM-2``, ``STEM-3``... that does not exist now (not claimed:
    :func:`rename_to_free_name` claims its name when the file is finished)."""
    return next(name for name in _numbered(path) if not os.path.lexists(name))


def _numbered(path: Path):
    """``path``, ``STEM-2``, ``STEM-3``..."""
    yield path
    for number in itertools.count(2):
        yield path.with_name(f"{path.stem}-{number}{path.suffix}")
