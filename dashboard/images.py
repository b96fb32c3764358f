"""Decode and check uploaded X-rays in memory: bytes in, 8-bit grayscale array out.

Every problem a user can fix raises ``ImageInputError`` with a message that says what is wrong
and what is accepted. Nothing here writes to disk or logs image content.
"""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 32
MAX_ASPECT = 4.0
MAX_PIXELS = 40_000_000  # about 6300 x 6300; the largest chest X-ray detectors are near 4300 x 4300
WORKING_SIDE = 1024  # decoded images are kept at most this large: enough for every model and view
PIL_FORMATS = ("PNG", "JPEG")
DICOM_SUFFIXES = (".dcm", ".dicom")
UPLOAD_TYPES = ("png", "jpg", "jpeg", "dcm", "dicom")
ACCEPTED = (
    f"Accepted: a PNG, JPEG or DICOM chest X-ray, at least {MIN_SIDE} pixels per side, "
    f"no more than {MAX_ASPECT:g} times as long as it is wide, and at most {MAX_PIXELS // 1_000_000} "
    "million pixels."
)


class ImageInputError(Exception):
    """An upload that cannot be used; ``str(error)`` is a message for the user."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} {ACCEPTED}")


def decode_image(data: bytes, name: str = "") -> np.ndarray:
    """Bytes of a PNG, JPEG or DICOM file -> (height, width) uint8 grayscale array.

    The array is a working copy at most ``WORKING_SIDE`` pixels long, which keeps memory small.
    """
    if not data:
        raise ImageInputError("The file is empty.")
    if is_dicom(data, name):
        from .dicom import decode_dicom  # pydicom is only needed for DICOM files

        gray = decode_dicom(data)
    else:
        gray = _decode_pil(data)
    check_shape(gray.shape)
    return working_copy(gray)


def is_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES)


def check_pixel_count(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageInputError(
            f"The image is too large ({width} x {height} pixels); it may be a decompression bomb."
        )


def check_shape(shape: tuple[int, ...]) -> None:
    height, width = shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageInputError(f"The image is too small ({width} x {height} pixels).")
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ImageInputError(f"The image is too elongated ({width} x {height} pixels).")


def _decode_pil(data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as image:
                check_pixel_count(*image.size)
                image.load()
                return to_gray(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError("The image is too large; it may be a decompression bomb.") from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError("The file is not a readable PNG, JPEG or DICOM image.") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageInputError("The image file is damaged or truncated and cannot be decoded.") from exc


def to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 grayscale; transparency is composited on black."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return window_to_uint8(np.asarray(image, dtype=np.float64))
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        composited = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        image = Image.fromarray(np.round(composited).astype(np.uint8), "RGB")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1
    return np.asarray(image.convert("L"), dtype=np.uint8)


def window_to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Map ``values`` linearly so that ``low`` -> 0 and ``high`` -> 255 (min and max by default)."""
    low = float(np.min(values)) if low is None else low
    high = float(np.max(values)) if high is None else high
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) / (high - low)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def working_copy(gray: np.ndarray, max_side: int = WORKING_SIDE) -> np.ndarray:
    """The image shrunk (aspect kept) so that its longer side is at most ``max_side``."""
    if max(gray.shape) <= max_side:
        return gray
    image = Image.fromarray(gray, "L")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def model_input(gray: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 -> (size, size, 3) float32 RGB in 0-255, what every saved model takes.

    The image is squashed to a square as in training; the model does its own preprocessing.
    """
    resized = np.asarray(Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BILINEAR))
    return np.repeat(resized[..., None], 3, axis=-1).astype(np.float32)


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """A (size, size) view of the image, squashed like the model input, for display."""
    return np.asarray(Image.fromarray(gray, "L").resize((size, size), Image.Resampling.LANCZOS))


def image_digest(gray: np.ndarray) -> str:
    """A key for caches: the SHA-256 of the shape and the pixels."""
    digest = hashlib.sha256(repr(gray.shape).encode())
    digest.update(np.ascontiguousarray(gray).tobytes())
    return digest.hexdigest()
