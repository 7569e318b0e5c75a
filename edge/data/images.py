"""Image files: listing a folder's images, reading one as uint8 HWC with clear errors, resizing.

Images stay uint8, the bytes a camera delivers; a channel mismatch (grayscale file, RGB model) is an error
unless conversion is asked for, so a wrong data set is not silently scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gedge.core.errors import DataError
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: Path, what: str = "image folder") -> list[Path]:
    """The image files of a folder, sorted; ``what`` names the folder in the error when there are none.

    Every entry with an image suffix that is not a folder is listed, also a broken or looping symbolic link or a
    file that cannot be read, so that reading it fails with its name instead of the image silently missing."""
    if not folder.exists():
        raise DataError(f"{what} does not exist", folder)
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder", folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
    if not files:
        raise DataError(f"{what} contains no images ({', '.join(IMAGE_SUFFIXES)})", folder)
    return files


# Modes of 8-bit images by channel count; 16- and 32-bit modes (I;16, I, F) are refused: their values do not fit
# the camera bytes the model was trained on, and Pillow's conversion to 8 bits clips instead of scaling.
MODE_CHANNELS = {"1": 1, "L": 1, "P": 3, "RGB": 3, "YCbCr": 3, "LA": 2, "RGBA": 4, "CMYK": 4}


def _check_file(path: Path) -> None:
    """A one-line DataError for a path that is not a readable regular file."""
    if path.is_symlink() and not path.exists():
        raise DataError("image is a broken or looping symbolic link", path)
    if path.is_dir():
        raise DataError("is a folder, not an image file", path)
    if not path.exists():
        raise DataError("image file does not exist", path)
    if not path.is_file():
        raise DataError("is not a regular file (a pipe or a device?)", path)
    if path.stat().st_size == 0:
        raise DataError("image file is empty (0 bytes)", path)


def _decoded(im: Image.Image, path: Path, channels: int, convert: bool) -> np.ndarray:
    """The loaded image as uint8 HxWxC with the model's channel count, or a DataError saying why not."""
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise DataError(f"has {frames} frames (animated or multi-page); gedge reads single images", path)
    mode = im.mode
    if mode not in MODE_CHANNELS:
        raise DataError(f"unsupported image mode {mode} (gedge reads 8-bit grayscale or colour images; "
                        "convert high bit depths to 8 bits first)", path)
    have = MODE_CHANNELS[mode]
    if have != channels and not convert:
        want = "RGB" if channels == 3 else "grayscale"
        raise DataError(f"has {have} channel(s) ({mode}) but the model expects {channels} ({want}); "
                        "pass --convert to convert", path)
    return np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)


def read_image(path: Path, channels: int, convert: bool = False) -> np.ndarray:
    """Read one image as uint8 HxWxC. Channel mismatches (grayscale, RGBA, CMYK for an RGB model) are errors
    unless ``convert`` is set; animated images, high bit depths and images over Pillow's decompression-bomb
    limit are refused. Every failure is a one-line :class:`DataError` naming the file."""
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as im:
            im.load()
            array = _decoded(im, path, channels, convert)
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(f"image is too large to decode safely ({exc})", path) from None
    except PermissionError:
        raise DataError("image file cannot be read (permission denied)", path) from None
    except Exception as exc:  # Pillow's decoders raise many kinds on corrupt data (OSError, SyntaxError, ...)
        raise DataError(f"unreadable or corrupt image ({exc.__class__.__name__}: {exc})", path) from None
    return array[..., None] if array.ndim == 2 else array


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a uint8 HWC image (returned as is when it already has the size)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    mode = "L" if image.shape[2] == 1 else "RGB"
    im = Image.fromarray(image[..., 0] if mode == "L" else image, mode)
    out = np.asarray(im.resize((width, height), Image.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Image files from a list of files and folders (a folder gives its images, sorted)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(list_images(item))
        elif item.exists():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"not an image file ({', '.join(IMAGE_SUFFIXES)})", item)
            files.append(item)
        elif item.is_symlink():
            raise DataError("is a broken or looping symbolic link", item)
        else:
            raise DataError("no such file or folder", item)
    return files
