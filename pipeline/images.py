"""Every X-ray enters here: a file or uploaded bytes -> 8-bit grayscale -> the model input.

Training, ``evaluate``, ``audit`` and the dashboard all call these functions, so a model sees the
same array for a file whichever way it arrives: PNG and JPEG decoded by Pillow (EXIF orientation
applied), DICOM by pydicom (``pipeline.dicom``, imported only for DICOM files). Every problem a
user can fix raises ``ImageInputError`` with a message that says what is wrong and what is
accepted. Nothing here imports TensorFlow, writes to disk or logs image content.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .config import DICOM_SUFFIXES, IMAGE_EXTENSIONS, MAX_ASPECT, MAX_PIXELS, MIN_SIDE, WORKING_SIDE
from .errors import PipelineError

PIL_FORMATS = ("PNG", "JPEG")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_16_BIT_COLOUR_TYPES = (2, 4, 6)  # RGB, gray + alpha, RGBA: Pillow keeps only their top byte
ORIENTATION_TAG = ExifTags.Base.Orientation
TURNING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's convert("L")
UPLOAD_TYPES = tuple(suffix.lstrip(".") for suffix in IMAGE_EXTENSIONS)
ACCEPTED = (
    f"Accepted: a PNG, JPEG or DICOM chest X-ray, at least {MIN_SIDE} pixels per side, "
    f"no more than {MAX_ASPECT:g} times as long as it is wide, and at most {MAX_PIXELS // 1_000_000} "
    "million pixels."
)


class ImageInputError(PipelineError):
    """An image that cannot be used; ``str(error)`` is a message for the user (the CLI prints it as one line)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} {ACCEPTED}")
        self.problem = problem


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


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file -> what ``decode_image`` makes of its bytes; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageInputError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    try:
        return decode_image(data, path.name)
    except ImageInputError as exc:
        raise ImageInputError(f"{path}: {exc.problem}") from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as ``read_image`` shows it (EXIF orientation applied), before
    any shrinking to the working copy: the frame that pixel coordinates such as lung boxes refer to.
    Only the header is read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageInputError(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    if is_dicom(data, path.name):
        from .dicom import read_header

        header = read_header(data)
        return int(header.Columns), int(header.Rows)
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as image:
            width, height = image.size
            turned = image.getexif().get(ORIENTATION_TAG) in TURNING_ORIENTATIONS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{path}: the file is not a readable PNG, JPEG or DICOM image.") from exc
    return (height, width) if turned else (width, height)


def model_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8: the image squashed to the model's square, as in training.

    Bilinear; when shrinking, Pillow widens the filter to the scale, so it also antialiases.
    """
    return np.asarray(Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BILINEAR))


def model_input(gray: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 -> (size, size, 3) float32 RGB in 0-255, what every saved model takes.

    The model does its own preprocessing.
    """
    return np.repeat(model_gray(gray, size)[..., None], 3, axis=-1).astype(np.float32)


def file_to_model_gray(path: str | os.PathLike, size: int) -> np.ndarray:
    """The grayscale part of ``file_to_model_input``: what training caches per file."""
    return model_gray(read_image(path), size)


def file_to_model_input(path: str | os.PathLike, size: int) -> np.ndarray:
    """THE way a file becomes the model's input: (size, size, 3) float32 RGB in 0-255."""
    return model_input(read_image(path), size)


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
                if is_16_bit_colour_png(data):
                    return orient(decode_16_bit_colour_png(data), image.getexif().get(ORIENTATION_TAG))
                image.load()
                return to_gray(ImageOps.exif_transpose(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError("The image is too large; it may be a decompression bomb.") from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError("The file is not a readable PNG, JPEG or DICOM image.") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageInputError("The image file is damaged or truncated and cannot be decoded.") from exc


def is_16_bit_colour_png(data: bytes) -> bool:
    """A PNG whose IHDR chunk declares 16 bits per sample and colour or alpha channels."""
    header = data[:26]
    return (len(header) == 26 and header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR"
            and header[24] == 16 and header[25] in PNG_16_BIT_COLOUR_TYPES)


def decode_16_bit_colour_png(data: bytes) -> np.ndarray:
    """16-bit RGB, RGBA or gray + alpha PNG -> uint8 grayscale by its bit depth, like 16-bit gray.

    Pillow decodes these to 8 bits by keeping each sample's top byte, which turns a 12-bit X-ray
    black (4095 -> 15). TensorFlow's PNG decoder keeps all 16 bits; it is imported only here.
    """
    import tensorflow as tf

    try:
        samples = tf.io.decode_png(data, dtype=tf.uint16).numpy().astype(np.float64)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as exc:
        raise ImageInputError("The image file is damaged or truncated and cannot be decoded.") from exc
    colour, alpha = (samples[..., :-1], samples[..., -1]) if samples.shape[-1] in (2, 4) else (samples, None)
    gray = colour @ LUMA if colour.shape[-1] == 3 else colour[..., 0]
    if alpha is not None:
        gray *= alpha / np.iinfo(np.uint16).max  # transparency composited on black, as for 8 bits
    return scale_to_uint8(np.rint(gray).astype(np.uint16))


def orient(gray: np.ndarray, orientation: int | None) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an array, as ``ImageOps.exif_transpose`` does to an image."""
    steps = {2: (np.fliplr,), 3: (np.rot90, np.rot90), 4: (np.flipud,), 5: (np.transpose,),
             6: (lambda a: np.rot90(a, -1),), 7: (np.transpose, np.rot90, np.rot90), 8: (np.rot90,)}
    for step in steps.get(orientation, ()):
        gray = step(gray)
    return np.ascontiguousarray(gray)


def to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 grayscale; transparency is composited on black."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "L")
    if image.mode.startswith("I") or image.mode == "F":
        return scale_to_uint8(np.asarray(image))
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        composited = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        image = Image.fromarray(np.round(composited).astype(np.uint8), "RGB")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1
    return np.asarray(image.convert("L"), dtype=np.uint8)


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """16- or 32-bit samples -> uint8 by their bit depth, never by the top byte of their type.

    Non-negative integers keep the top 8 bits of the smallest even bit depth (at least 8) that
    holds their maximum: a 12-bit X-ray in a 16-bit PNG is divided by 16 (4095 -> 255), and the
    16-bit copy of an 8-bit X-ray, with values v * 257 or v * 16, gives back v exactly. Floats and
    negative integers have no bit depth: their minimum and maximum span 0-255.
    """
    if values.dtype.kind == "f" or values.min() < 0:
        return window_to_uint8(values)
    bits = int(values.max()).bit_length()
    bits = max(8, bits + bits % 2)
    return (values.astype(np.int64) >> (bits - 8)).astype(np.uint8)


def window_to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Map ``values`` linearly so that ``low`` -> 0 and ``high`` -> 255 (min and max by default)."""
    low = float(np.min(values)) if low is None else low
    high = float(np.max(values)) if high is None else high
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.array(values, dtype=np.float64)  # one copy; the steps below work in place
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def working_copy(gray: np.ndarray, max_side: int = WORKING_SIDE) -> np.ndarray:
    """The image shrunk (aspect kept) so that its longer side is at most ``max_side``."""
    if max(gray.shape) <= max_side:
        return gray
    image = Image.fromarray(gray, "L")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """A (size, size) view of the image, squashed like the model input, for display."""
    return np.asarray(Image.fromarray(gray, "L").resize((size, size), Image.Resampling.LANCZOS))


def image_digest(gray: np.ndarray) -> str:
    """A key for caches: the SHA-256 of the shape and the pixels."""
    digest = hashlib.sha256(repr(gray.shape).encode())
    digest.update(np.ascontiguousarray(gray).tobytes())
    return digest.hexdigest()
