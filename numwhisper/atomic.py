"""Files that appear whole or not at all.

A file is written under a hidden temporary name beside its final path (``.{name}.XXXX.partial``),
given the permissions a plain ``open`` would give it, and renamed into place; a rename within one
directory is atomic, so a reader never sees half a file, and a failure leaves nothing behind.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from typing import Callable, List

TEMPORARY_SUFFIX = ".partial"


def default_permissions(path: Path, directory: bool = False) -> None:
    """Give a temporary file or folder the permissions a plain ``open``/``mkdir`` would (mkstemp's are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def staged(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` for a new hidden file beside ``path`` -> the temporary, ready to rename.

    The temporary is removed again if ``write`` (or anything before the return) fails.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        default_permissions(temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary)`` then move the result to ``path`` (its folder made if needed); nothing is left on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staged(path, write)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def leftovers(path: Path) -> List[Path]:
    """The temporaries of ``path`` still on disk: what a process killed while writing it left behind."""
    path = Path(path)
    return [Path(p) for p in glob.glob(os.path.join(glob.escape(str(path.parent)),
                                                   f".{glob.escape(path.name)}.*{TEMPORARY_SUFFIX}"))]


def remove_leftovers(path: Path) -> None:
    """Delete ``leftovers(path)`` (those that are already gone, or cannot be deleted, are let be)."""
    for leftover in leftovers(path):
        try:
            leftover.unlink()
        except OSError:
            pass
