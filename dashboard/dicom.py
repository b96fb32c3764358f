"""DICOM uploads -> 8-bit grayscale: modality LUT, then VOI window or LUT, MONOCHROME1 inverted."""

from __future__ import annotations

import io

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from .images import ImageInputError, check_pixel_count, window_to_uint8

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def decode_dicom(data: bytes) -> np.ndarray:
    """Bytes of a DICOM file -> (rows, columns) uint8 grayscale; the first frame if several."""
    dataset = _read(data)
    check_pixel_count(int(dataset.get("Columns", 0)), int(dataset.get("Rows", 0)))
    try:
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types for unsupported or broken pixel data
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown")
        raise ImageInputError(
            f"The DICOM pixel data cannot be decoded (transfer syntax: {name}); "
            "export it as uncompressed DICOM, PNG or JPEG."
        ) from exc
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in GRAYSCALE:
        return _colour_to_gray(pixels)
    gray = to_display(pixels, dataset)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _read(data: bytes) -> Dataset:
    try:
        dataset = dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ImageInputError("The file is not a readable DICOM file.") from exc
    if "PixelData" not in dataset:
        raise ImageInputError("The DICOM file holds no image (it has no pixel data).")
    return dataset


def to_display(pixels: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Stored values -> uint8: the window of the file when it has one, else its min and max."""
    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    window = _window(dataset)
    if window is not None:
        center, width = window
        # DICOM PS3.3 C.11.2.1.2.1, linear function: center - 0.5 +- (width - 1) / 2 span the output.
        low = center - 0.5 - (width - 1.0) / 2.0
        return window_to_uint8(values, low, low + width - 1.0)
    if "VOILUTSequence" in dataset:
        values = np.asarray(apply_voi_lut(values, dataset), dtype=np.float64)
    return window_to_uint8(values)


def _window(dataset: Dataset) -> tuple[float, float] | None:
    if "WindowCenter" not in dataset or "WindowWidth" not in dataset:
        return None
    center, width = (_first(dataset.WindowCenter), _first(dataset.WindowWidth))
    return (center, width) if width >= 1.0 else None


def _first(value: object) -> float:
    return float(value[0] if isinstance(value, MultiValue | list | tuple) else value)


def _colour_to_gray(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ImageInputError("The DICOM image is neither grayscale nor RGB.")
    luma = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    top = float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind == "u" else float(luma.max())
    return window_to_uint8(luma, 0.0, top)
