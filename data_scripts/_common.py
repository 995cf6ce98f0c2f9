"""Helpers shared by the data preparation scripts.

The scripts never download: they read archives or folders the user already
has, and when those are missing they say where to get them and exit with
``EXIT_MISSING``. Everything here uses only the standard library and Pillow.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from PIL import Image

EXIT_OK = 0
EXIT_CHECKSUM = 1   # a file did not match its listed SHA256
EXIT_MISSING = 2    # the input archive / folder is not there

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def default_out(name: str) -> Path:
    """``data/<name>`` under the project root (what ``--out`` defaults to)."""
    return PROJECT_ROOT / "data" / name


def default_src(name: str) -> Path:
    """``downloads/<name>`` under the project root (what ``--src`` defaults to)."""
    return PROJECT_ROOT / "downloads" / name


def report_missing(path: Path, what: str, sources: Sequence[str]) -> int:
    """Say what is missing and where to get it; return ``EXIT_MISSING`` for ``main``."""
    lines = [f"error: {what} not found at {path}", "Download it yourself (this script never downloads) from:"]
    lines += [f"  {s}" for s in sources]
    lines.append("then pass its location with --src.")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_MISSING


# ----------------------------------------------------------------------------- archives

def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(s) for s in ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """File name without its archive suffix (``Set5.tar.gz`` -> ``Set5``)."""
    name = path.name
    for s in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(s):
            return name[: -len(s)]
    return path.stem


def _inside(root: Path, member: str) -> bool:
    """Whether an archive member would land inside ``root`` (no ``..`` or absolute escapes)."""
    target = (root / member).resolve()
    return target == root or root in target.parents


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a zip or tar archive into ``dest``, refusing members that escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            bad = [n for n in z.namelist() if not _inside(root, n)]
            if bad:
                raise ValueError(f"{archive}: refusing members outside the target folder: {bad[:3]}")
            z.extractall(dest)
        return dest
    with tarfile.open(archive) as t:
        members = t.getmembers()
        bad = [m.name for m in members if not _inside(root, m.name) or m.issym() or m.islnk()]
        if bad:
            raise ValueError(f"{archive}: refusing links or members outside the target folder: {bad[:3]}")
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, members=members, filter="data")
        else:  # Python < 3.11.4: members were checked above
            t.extractall(dest, members=members)
    return dest


class SourceTree:
    """A source given as folder or archive, as a folder (archives unpacked to a temp dir)."""

    def __init__(self, src: Path):
        self.src = src
        self._tmp: Optional[tempfile.TemporaryDirectory] = None

    def __enter__(self) -> Path:
        if is_archive(self.src):
            self._tmp = tempfile.TemporaryDirectory(prefix="hinas_data_")
            return extract(self.src, Path(self._tmp.name))
        return self.src

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# ----------------------------------------------------------------------------- images

def find_images(folder: Path, recursive: bool = False) -> List[Path]:
    """Image files by extension (any case), sorted; skips macOS ``._`` resource files."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("._"))


def save_png(src: Path, dst: Path, channels: Optional[int] = None) -> None:
    """Write ``src`` as PNG at ``dst``: byte copy when it already is a PNG that
    needs no conversion; ``channels`` 1 = grey (BT.601 luma), 3 = RGB, None = keep.
    Alpha is dropped."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        mode = im.mode
        keep = (channels is None and mode in ("L", "RGB", "I", "I;16")) or \
               (channels == 1 and mode in ("L", "I", "I;16")) or (channels == 3 and mode == "RGB")
        if keep and im.format == "PNG":
            shutil.copyfile(src, dst)
            return
        if mode.startswith("I") and channels == 3:
            # 16-bit grey to RGB: Pillow has no 16-bit RGB, so keep the top 8 bits.
            im = Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8), "L")
        if channels == 1:
            out = im if im.mode in ("L", "I", "I;16") else im.convert("RGB").convert("L")
        elif channels == 3:
            out = im.convert("RGB")
        else:
            out = im if im.mode in ("L", "RGB", "I", "I;16") else im.convert("L" if im.mode in ("1", "LA") else "RGB")
        out.save(dst, format="PNG")


def protect_output(out: Path) -> None:
    """Create ``out`` with a ``.gitignore`` of ``*`` so prepared data is never committed."""
    out.mkdir(parents=True, exist_ok=True)
    ignore = out / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# prepared data, not part of the repository\n*\n")


# ----------------------------------------------------------------------------- checksums

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Checksums:
    """A ``sha256sum``-style list (``<hash>  <path>`` per line, ``*path`` allowed).

    Files are matched by the longest listed path that is a suffix of their own
    path, so ``./Set5/HR/baby.png`` in the list checks ``.../anything/Set5/HR/baby.png``.
    """

    def __init__(self, entries: Dict[str, str]):
        self.by_parts = {tuple(Path(p).parts): h.lower() for p, h in entries.items()}

    @classmethod
    def from_file(cls, path: Path) -> "Checksums":
        entries = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise ValueError(f"{path}:{n}: expected '<sha256>  <path>', got {line!r}")
            rel = parts[1].lstrip("*")
            entries[rel[2:] if rel.startswith("./") else rel] = parts[0]
        return cls(entries)

    def expected(self, path: Path) -> Optional[str]:
        parts = path.resolve().parts
        for k in range(len(parts), 0, -1):
            h = self.by_parts.get(parts[-k:])
            if h is not None:
                return h
        return None

    def verify(self, files: Iterable[Path]) -> "tuple[int, int, List[str]]":
        """Return (verified, unlisted, mismatches) over ``files``."""
        ok, unlisted, bad = 0, 0, []
        for f in files:
            want = self.expected(f)
            if want is None:
                unlisted += 1
            elif sha256_file(f) == want:
                ok += 1
            else:
                bad.append(str(f))
        return ok, unlisted, bad
