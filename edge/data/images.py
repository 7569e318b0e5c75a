"""Image files: listing a folder's images, reading one as uint8 HWC with clear errors, resizing.

Images stay uint8, the bytes a camera delivers; a channel mismatch (grayscale file, RGB model) is an error
unless conversion is asked for, so a wrong data set is not silently scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gedge.core.errors import DataError
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: Path, what: str = "image folder") -> list[Path]:
    """The image files of a folder, sorted; ``what`` names the folder in the error when there are none."""
    if not folder.exists():
        raise DataError(f"{what} does not exist", folder)
    if not folder.is_dir():
        raise DataError(f"{what} is not a folder", folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{what} contains no images ({', '.join(IMAGE_SUFFIXES)})", folder)
    return files


def read_image(path: Path, channels: int, convert: bool = False) -> np.ndarray:
    """Read one image as uint8 HxWxC. Channel mismatches are errors unless ``convert`` is set."""
    path = Path(path)
    if not path.is_file():
        raise DataError("image file does not exist", path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "I", "I;16", "F", "1", "LA"):
                have = 1
            elif mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
                have = 3
            else:
                raise DataError(f"unsupported image mode {mode}", path)
            if have != channels and not convert:
                want = "RGB" if channels == 3 else "grayscale"
                raise DataError(f"has {have} channel(s) ({mode}) but the model expects {channels} ({want}); "
                                "pass --convert to convert", path)
            array = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
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
        else:
            raise DataError("no such file or folder", item)
    return files
