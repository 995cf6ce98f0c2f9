"""Images: files, folders and the embedded pictures; reading, writing, converting.

Images are float32 numpy arrays in [0, 1], ``HxW`` (grey) or ``HxWx3`` (RGB);
:func:`to_tensor` / :func:`to_numpy` convert to and from ``C,H,W`` tensors.
(Training pairs are made by :mod:`hinas_lib.datasets` and the tasks.)

Colour conversion: grey from RGB is BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
(full range, what MATLAB ``rgb2gray`` and PIL ``convert('L')`` use), kept in
float; RGB from grey repeats the channel. (The metrics' ``rgb_to_y`` is the
studio-range Y of SR papers, a different thing.)

Embedded images (``EMBEDDED_IMAGES``): photographs shipped inside
scikit-image 0.26, so the library runs offline with no downloads, grouped by the
role :func:`hinas_lib.splits.embedded_split` gives them (fixed here, so that every
run and every machine searches, validates and tests on the same pictures):

* ``search_train`` (7): brick, grass, gravel, moon (grey textures and a
  natural scene), rocket, coins, immunohistochemistry: varied texture for the
  search's weight and architecture steps.
* ``search_val`` (3): chelsea (cat fur), motorcycle (left view of the stereo
  pair, man-made edges), page (scanned text, thin strokes).
* ``test`` (3): camera, astronaut, coffee: the classic natural photographs,
  never seen during search or retraining.

Left out on purpose: cat (same picture as chelsea), retina and
hubble_deep_field (mostly black background), text (mostly flat), clock
(motion-blurred), cell (microscopy), horse and binary_blobs (binary), colorwheel,
checkerboard, logo, shepp_logan_phantom (synthetic), microaneurysms and
lfw_subset (too small), and every image that scikit-image would download.

"""
from __future__ import annotations

import io
import os
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import skimage.data
import torch
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from .checkpoint import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

EMBEDDED_IMAGES: Dict[str, Tuple[str, ...]] = {
    "search_train": ("brick", "grass", "gravel", "moon", "rocket", "coins", "immunohistochemistry"),
    "search_val": ("chelsea", "motorcycle", "page"),
    "test": ("camera", "astronaut", "coffee"),
}

# BT.601 luma weights (full range) for grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)

NamedImages = List[Tuple[str, np.ndarray]]
Background = Union[str, Tuple[int, int, int]]  # a colour to composite transparent images over


class ImageError(ValueError):
    """An image file or folder cannot be used; the message names it."""


# ----------------------------------------------------------------------------- images

def to_channels(img: np.ndarray, channels: int, *, source: str = "image") -> np.ndarray:
    """Image -> float32 [0, 1] ``HxW`` (channels=1) or ``HxWx3`` (channels=3).

    Integer images are scaled by their dtype's maximum; float images must already
    be in [0, 1]. Alpha (2nd of 2 or 4th of 4 channels) is dropped first.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    a = _to_unit_float(np.asarray(img), source)
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = a[:, :, : a.shape[2] - 1]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        out = a if channels == 1 else np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 3:
        out = a if channels == 3 else a.astype(np.float64) @ _LUMA
    else:
        raise ImageError(f"{source}: expected an image HxW or HxWx{{1,2,3,4}}, got shape {a.shape}")
    return np.ascontiguousarray(out, dtype=np.float32)


def _to_unit_float(a: np.ndarray, source: str) -> np.ndarray:
    """Any pixel dtype -> float in [0, 1], scaling integers by their type's maximum."""
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / np.iinfo(a.dtype).max
    if np.issubdtype(a.dtype, np.floating):
        # NaN/inf would flow through the network and the metrics as NaN; refuse them here.
        bad = ~np.isfinite(a)
        if bad.any():
            raise ImageError(f"{source}: float image with {int(bad.sum())} NaN or infinite pixel value(s)")
        lo, hi = float(a.min()), float(a.max())
        # Float files carry no scale; only accept the [0, 1] convention.
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ImageError(f"{source}: float image with values in [{lo:g}, {hi:g}], expected [0, 1]")
        return np.clip(a, 0.0, 1.0)
    raise ImageError(f"{source}: unsupported pixel type {a.dtype}")


@lru_cache(maxsize=None)
def _embedded_raw(name: str) -> np.ndarray:
    """The bundled uint8 picture (cached: the motorcycle loader also reads a disparity map)."""
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def embedded_names() -> Tuple[str, ...]:
    """All embedded image names, in split order."""
    return tuple(n for names in EMBEDDED_IMAGES.values() for n in names)


def load_embedded(name: str, channels: int) -> np.ndarray:
    """One of ``EMBEDDED_IMAGES`` as float32 [0, 1], ``HxW`` or ``HxWx3``."""
    if name not in embedded_names():
        raise ValueError(f"unknown embedded image {name!r}; choose from {embedded_names()}")
    return to_channels(_embedded_raw(name), channels, source=name)


def load_image(path: Union[str, Path], channels: Optional[int], *,
               background: Optional[Background] = None) -> np.ndarray:
    """Read an image file into float32 [0, 1] ``HxW`` or ``HxWx3``.

    Pillow reads it (PNG, JPEG, BMP, TIFF and the rest of Pillow's formats), so
    the picture comes out as it displays: EXIF orientation applied, CMYK
    converted to RGB by Pillow (which knows Adobe's inverted CMYK JPEGs),
    palette images expanded (to grey when the palette is grey), a fully opaque
    alpha channel dropped, 1-bit images as 0/1. Transparent or translucent
    pixels are refused unless ``background`` is given (the colour under them is
    not part of the picture); then the image is composited over it. A file of
    several pages or frames (TIFF, GIF, APNG, WebP) is refused, as is a PNG
    whose pixel data is shorter than its header says. 16-bit grey PNG/TIFF and 16-bit or float TIFF keep
    their precision (multi-channel 16-bit and float TIFFs are read with
    ``tifffile``, which Pillow cannot do); 16-bit *RGB* PNGs come at 8-bit
    precision (Pillow's limit).

    Args:
        path: the image file.
        channels: 1 (grey), 3 (RGB) or None to keep the file's own colour
            (grey stays ``HxW``, colour becomes ``HxWx3``), so callers can check
            it against what a model expects.
        background: a colour to composite transparent images over: a Pillow
            colour name or ``#rrggbb`` (``"white"``), or an ``(r, g, b)`` of 0..255.

    Returns:
        float32 array in [0, 1].

    Raises:
        ImageError: naming the file, when it is missing, not an image, damaged
            or truncated, has several pages, has transparent pixels (without
            ``background``), or holds NaN/inf or out-of-range float values.
        OSError: when the file exists but cannot be opened (e.g. permissions).
    """
    path = Path(path)
    bg = parse_background(background)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    a = _read_pixels(path)
    if a.ndim not in (2, 3) or a.size == 0:
        raise ImageError(f"{path}: expected a single 2-D image, got array of shape {a.shape}")
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = _flatten_alpha(a, bg, path)
    if channels is None:
        channels = 1 if a.ndim == 2 or a.shape[2] in (1, 2) else 3
    return to_channels(a, channels, source=str(path))


def _not_an_image(path: Path, why: str) -> ImageError:
    return ImageError(f"{path}: not an image file (or an unsupported format: {why})")


def parse_background(value: Optional[Background]) -> Optional[Tuple[int, int, int]]:
    """``"white"``, ``"#808080"``, ``(r, g, b)`` -> ``(r, g, b)`` in 0..255 (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            rgb = ImageColor.getrgb(value.strip())
        except ValueError:
            raise ValueError(f"--background: unknown colour {value!r}; use a name (white, black) "
                             "or #rrggbb") from None
        return tuple(int(c) for c in rgb[:3])
    if (isinstance(value, (tuple, list)) and len(value) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)):
        return tuple(value)
    raise ValueError(f"background: expected a colour name, #rrggbb or (r, g, b) in 0..255, got {value!r}")


def _flatten_alpha(a: np.ndarray, bg: Optional[Tuple[int, int, int]], path: Path) -> np.ndarray:
    """``HxWx2``/``HxWx4`` (colour + alpha) -> colour: the alpha dropped when fully opaque,
    else composited over ``bg``; refused without one (hidden colours would show)."""
    top = 1.0 if np.issubdtype(a.dtype, np.floating) else (1 if a.dtype == bool else np.iinfo(a.dtype).max)
    alpha = a[..., -1]
    colour = a[..., :-1]
    if (alpha >= top).all():
        return colour[..., 0] if colour.shape[2] == 1 else colour
    if bg is None:
        n = int((alpha < top).sum())
        raise ImageError(f"{path}: {n} of {alpha.size} pixels are transparent or translucent; the colour "
                         "under them is not part of the picture. Pass --background COLOR (e.g. white, black, "
                         "#808080) to composite it over a colour (background= from Python)")
    c = _to_unit_float(colour, str(path))
    w = _to_unit_float(alpha, str(path))[..., None]
    b = np.asarray(bg, dtype=np.float64) / 255.0
    if c.shape[2] == 1 and b[0] == b[1] == b[2]:  # grey stays grey over a grey background
        return (c * w + b[0] * (1 - w))[..., 0]
    return c * w + b * (1 - w)


def _check_png_data(fh, path: Path) -> None:
    """Refuse a PNG whose pixel data ends before its header's size: Pillow fills the
    missing rows with black without a word (and a 9000x9000 header on a 1 KB file
    would then restore 81 Mpx of black for hours). Counts the inflated bytes, fast."""
    size, where = os.fstat(fh.fileno()).st_size, fh.tell()  # Pillow reads on from `where`
    fh.seek(8)
    head = fh.read(25)
    if len(head) < 25 or head[4:8] != b"IHDR":
        fh.seek(where)
        return  # Pillow's own checks say what is wrong
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[8:21])
    bpp = depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
              if interlace else [(0, 0, 1, 1)])
    need = 0
    for x0, y0, dx, dy in passes:
        pw, ph = -(-(w - x0) // dx), -(-(h - y0) // dy)
        if pw > 0 and ph > 0:
            need += ph * (1 + -(-pw * bpp // 8))
    z, got, pos = zlib.decompressobj(), 0, 8
    while got < need and pos + 8 <= size:
        fh.seek(pos)
        length, kind = struct.unpack(">I4s", fh.read(8))
        start, pos = pos + 8, pos + 12 + length
        if kind == b"IEND":
            break
        if kind != b"IDAT":
            continue
        left = min(length, size - start)  # a cut file: what is there
        while left and got < need:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
            try:
                out = z.decompress(chunk, 1 << 22)
                got += len(out)
                while z.unconsumed_tail and got < need:
                    out = z.decompress(z.unconsumed_tail, 1 << 22)
                    got += len(out)
            except zlib.error:
                fh.seek(where)
                return  # Pillow reports damaged data itself
            if z.eof:
                break
        if z.eof:
            break
    fh.seek(where)
    if got < need:
        raise ImageError(f"{path}: cannot read image, the file is damaged or truncated (its {w}x{h} pixels "
                         f"need {need} bytes of data, it holds {got})")


def _frames(im: Image.Image) -> int:
    """Pages (TIFF) or frames (GIF, APNG, WebP) in the file; an MPO photo's extra frames are
    previews of the first, not pages."""
    return 1 if im.format == "MPO" else int(getattr(im, "n_frames", 1) or 1)


def _many_pages(path: Path, n: int, fmt: str) -> ImageError:
    return ImageError(f"{path}: the {fmt} file holds {n} pages/frames, and only one picture can be restored; "
                      "save the page you want as a file of its own")


def _read_pixels(path: Path) -> np.ndarray:
    """The pixels of ``path`` as displayed, in the file's own dtype (see :func:`load_image`);
    an alpha channel is kept for :func:`_flatten_alpha`."""
    with open(path, "rb") as fh:  # OSError (permissions, ...) passes through as a file-system error
        try:
            im = Image.open(fh)
            if im.format == "PNG":
                _check_png_data(fh, path)
            n = _frames(im)
            if n > 1:
                raise _many_pages(path, n, im.format)
            im.load()
        except ImageError:
            raise
        except UnidentifiedImageError:
            if path.suffix.lower() in (".tif", ".tiff"):
                return _read_tiff(path, orientation=None)  # e.g. float RGB, which Pillow cannot open
            raise _not_an_image(path, "Pillow cannot identify it") from None
        except Image.DecompressionBombError as e:
            raise ImageError(f"{path}: image too large to read safely ({e})") from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
            raise ImageError(f"{path}: cannot read image, the file is damaged or truncated "
                             f"({type(e).__name__}: {e})") from None
        if im.format == "TIFF" and _tiff_needs_tifffile(im):
            return _read_tiff(path, orientation=im.getexif().get(_EXIF_ORIENTATION))
        im = ImageOps.exif_transpose(im)
        return _pillow_pixels(im, path)


_EXIF_ORIENTATION = 0x0112


def _tiff_needs_tifffile(im: Image.Image) -> bool:
    """Pillow reduces multi-channel 16-bit TIFFs to 8 bits; tifffile keeps them."""
    bits = im.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return len(bits) > 1 and max(bits) > 8


def _read_tiff(path: Path, orientation: Optional[int]) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        raise _not_an_image(path, "a TIFF Pillow cannot read; `pip install tifffile` reads it") from None
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) > 1:
                raise _many_pages(path, len(tif.pages), "TIFF")
            page = tif.pages[0]
            a = page.asarray()
            if orientation is None:
                tag = page.tags.get(274)
                orientation = tag.value if tag is not None else 1
            planar = page.planarconfig == 2 and a.ndim == 3
    except ImageError:
        raise
    except Exception as e:  # tifffile raises many types for a damaged file
        raise _not_an_image(path, f"{type(e).__name__}: {e}") from None
    if planar:  # separate colour planes are stored (C, H, W)
        a = np.moveaxis(a, 0, -1)
    return _orient(a, int(orientation or 1))


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to ``HxW[xC]``, as ``ImageOps.exif_transpose`` does."""
    ops = {
        1: lambda x: x,
        2: lambda x: x[:, ::-1],               # mirror left-right
        3: lambda x: x[::-1, ::-1],            # rotate 180
        4: lambda x: x[::-1],                  # mirror top-bottom
        5: lambda x: x.swapaxes(0, 1),         # transpose
        6: lambda x: np.rot90(x, -1),          # rotate 90 clockwise
        7: lambda x: x.swapaxes(0, 1)[::-1, ::-1],  # transverse
        8: lambda x: np.rot90(x, 1),           # rotate 90 anticlockwise
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(a))


def _pillow_pixels(im: Image.Image, path: Path) -> np.ndarray:
    """A Pillow image -> numpy in a dtype that :func:`to_channels` scales right."""
    mode = im.mode
    keyed = "transparency" in im.info  # a palette entry or a colour marked transparent (tRNS)
    if mode in ("P", "PA"):
        # expand the palette; grey palettes give grey, not three equal channels
        grey = _grey_palette(im)
        if mode == "PA" or keyed:
            im = im.convert("RGBA")
            im = im.convert("LA") if grey else im
        else:
            im = im.convert("L" if grey else "RGB")
    elif mode in ("LA", "La"):
        im = im.convert("LA")
    elif mode in ("RGBA", "RGBa"):
        im = im.convert("RGBA")
    elif keyed and mode in ("L", "RGB"):
        im = im.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("1", "L", "RGB", "F") or mode.startswith("I;16"):
        pass
    elif mode == "I":
        # 32-bit integer: old Pillow versions read 16-bit grey PNGs this way
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:
            raise ImageError(f"{path}: 32-bit integer image with values in [{a.min()}, {a.max()}], "
                             "expected 16-bit data (0..65535)")
        return a.astype(np.uint16)
    else:  # RGBX, CMYK (Pillow undoes Adobe's inverted CMYK), YCbCr, LAB, HSV, ...
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as e:
            raise _not_an_image(path, f"Pillow cannot convert mode {mode} to RGB: {e}") from None
    a = np.asarray(im)
    if a.dtype.byteorder == ">":  # I;16B
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _grey_palette(im: Image.Image) -> bool:
    """Whether every palette entry the image uses has R == G == B."""
    pal = im.getpalette("RGB")
    if pal is None:
        return False
    pal = np.asarray(pal, dtype=np.int32).reshape(-1, 3)
    idx = np.asarray(im)
    used = np.unique(idx[..., 0] if idx.ndim == 3 else idx)  # PA: index and alpha
    used = used[used < len(pal)]
    rgb = pal[used]
    return bool(np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2]))


# Pillow format names for the extensions we write.
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def check_output_format(path: Union[str, Path]) -> str:
    """The Pillow format for an output path's extension.

    Args:
        path: the output file.

    Returns:
        ``'PNG'``, ``'JPEG'``, ``'BMP'`` or ``'TIFF'``.

    Raises:
        ImageError: for any other extension, naming the file.
    """
    path = Path(path)
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unsupported output format {path.suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(IMAGE_EXTENSIONS)}")
    return fmt


def encode_image(img: np.ndarray, fmt: str, *, source: str = "image") -> bytes:
    """A float [0, 1] ``HxW`` / ``HxWx3`` image as the bytes of an 8-bit file of format ``fmt``.

    Args:
        img: the picture; NaN/inf are refused.
        fmt: a Pillow format name (``'PNG'``, ``'JPEG'``, ...).
        source: what to call the image in messages.

    Returns:
        The encoded file.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ImageError(f"{source}: expected an image HxW or HxWx3 to save, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ImageError(f"{source}: refusing to save an image with NaN or infinite values")
    a8 = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    # JPEG: Pillow's default quality 75 visibly blurs a restored picture; 95 keeps it
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(a8, "L" if a8.ndim == 2 else "RGB").save(buf, format=fmt, **options)
    return buf.getvalue()


def save_image(path: Union[str, Path], img: np.ndarray) -> None:
    """Write a float [0, 1] ``HxW`` / ``HxWx3`` image as 8-bit (PNG/BMP/TIFF/JPEG by extension).

    The file is encoded in memory first and written atomically (temporary file
    in the same folder, fsync, rename), so a full disk or a crash never leaves a
    truncated picture, and never destroys the file it replaces.

    Args:
        path: the output file; its folder is created when missing.
        img: the picture, float in [0, 1].
    """
    path = Path(path)
    blob = encode_image(img, check_output_format(path), source=str(path))
    atomic_write_bytes(path, blob)


def list_images(folder: Union[str, Path], recursive: bool = False) -> List[Path]:
    """Image files (by extension, any case) in ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"image folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageError(f"image folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def load_folder(folder: Union[str, Path], channels: int, recursive: bool = False, *,
                background: Optional[Background] = None) -> NamedImages:
    """``(name, image)`` pairs; the name is the path relative to ``folder`` without extension
    (``background``: see :func:`load_image`)."""
    folder = Path(folder)
    return [(p.relative_to(folder).with_suffix("").as_posix(), load_image(p, channels, background=background))
            for p in list_images(folder, recursive)]


def centre_crop(img: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Centre crop of at most ``size`` pixels per side, a multiple of ``multiple`` (0 = whole)."""
    if size <= 0:
        return img
    h, w = img.shape[:2]
    ch = min(h, size) // multiple * multiple
    cw = min(w, size) // multiple * multiple
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y:y + ch, x:x + cw]


# ----------------------------------------------------------------------------- tensors

def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC float array -> (C,H,W) float32 tensor."""
    a = img[None] if img.ndim == 2 else np.transpose(img, (2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def to_numpy(x: torch.Tensor, *, clamp: bool = True) -> np.ndarray:
    """(C,H,W) tensor -> HxW or HxWxC float32 array, clamped to [0, 1] (``clamp=False``: as it is,
    e.g. a noisy image whose noise left [0, 1])."""
    a = x.detach().float()
    a = (a.clamp(0, 1) if clamp else a).cpu().numpy()
    return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))

