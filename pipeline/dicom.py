"""DICOM -> 8-bit grayscale through pydicom's own API, with the size checked before any decoding.

The header is read without the pixel data and its size (rows x columns x frames x samples x bits)
checked against the limits; then frame 0 alone is decoded, whatever the number of frames. Grayscale
goes through the modality LUT (or rescale) and ``apply_voi_lut`` (VOI LUT, else the window with its
VOI LUT Function), whose output range spans 0-255; without either, the range BitsStored allows does.
MONOCHROME1 is inverted last. Imported by ``pipeline.images`` for DICOM files only.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, decoders, pixel_array
from pydicom.pixels.decoders.base import Decoder

from .config import MAX_DICOM_BYTES
from .images import ImageInputError, check_pixel_count, check_shape, window_to_uint8

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
PALETTE = "PALETTE COLOR"
REQUIRED = ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation")
EXPORT = "export it as uncompressed DICOM, PNG or JPEG."
# pydicom's pixel data decoders by transfer syntax UID; one is usable where its plugin is installed.
DECODERS: dict[str, Decoder] = {d.UID: d for d in vars(decoders).values() if isinstance(d, Decoder)}
VOI_LUT_BITS = (8, *range(10, 17))  # bits per VOI LUT entry the standard allows (PS3.3 C.8.11.3.1.5)


def decode_dicom(data: bytes) -> np.ndarray:
    """Bytes of a DICOM file -> (rows, columns) uint8 grayscale of its first frame."""
    header = read_header(data)
    check_size(header)
    pixels = first_frame(data, header)
    photometric = str(header.PhotometricInterpretation).upper()
    if photometric == PALETTE:
        rgb = apply_color_lut(pixels, header)
        return colour_to_gray(rgb, 8 * rgb.dtype.itemsize)
    if photometric not in GRAYSCALE:
        return colour_to_gray(pixels, int(header.get("BitsStored") or header.BitsAllocated))
    gray = to_display(pixels, header)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def read_header(data: bytes) -> Dataset:
    """Every element before the pixel data; nothing of the pixel data is read."""
    try:
        header = dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for files that are not DICOM or are broken
        raise ImageInputError("The file is not a readable DICOM file.") from exc
    missing = [key for key in REQUIRED if header.get(key) in (None, "")]
    if missing:
        raise ImageInputError(f"The DICOM file describes no image (it has no {', '.join(missing)}).")
    return header


def check_size(header: Dataset) -> None:
    """Refuse a file whose frame or whole pixel data, once decoded, would pass the limits."""
    rows, columns = int(header.Rows), int(header.Columns)
    check_pixel_count(columns, rows)
    check_shape((rows, columns))
    frames = max(int(header.get("NumberOfFrames") or 1), 1)
    samples = int(header.get("SamplesPerPixel") or 1)
    decoded = rows * columns * frames * samples * -(-int(header.BitsAllocated) // 8)
    if decoded > MAX_DICOM_BYTES:
        raise ImageInputError(
            f"The DICOM pixel data is too large ({frames} frames of {columns} x {rows} pixels, "
            f"{decoded / 1e9:.1f} GB decoded); it may be a decompression bomb."
        )


def first_frame(data: bytes, header: Dataset) -> np.ndarray:
    """Frame 0 decoded alone; a clear refusal for a transfer syntax that cannot be decoded here."""
    syntax = header.file_meta.get("TransferSyntaxUID")
    name = getattr(syntax, "name", "an unknown transfer syntax")
    decoder = DECODERS.get(syntax)
    if decoder is None or not decoder.is_available:
        raise ImageInputError(f"The DICOM pixel data is stored as {name}, which cannot be decoded here; {EXPORT}")
    try:
        return pixel_array(io.BytesIO(data), index=0)
    except AttributeError as exc:  # the header is complete (read_header), so the pixel data is missing
        raise ImageInputError("The DICOM file holds no image (it has no pixel data).") from exc
    except Exception as exc:  # pydicom raises many types for broken pixel data
        raise ImageInputError(f"The DICOM pixel data cannot be decoded ({name}); {EXPORT}") from exc


def to_display(pixels: np.ndarray, header: Dataset) -> np.ndarray:
    """Stored grayscale values -> uint8 through the modality LUT, then the VOI LUT or window."""
    values = apply_modality_lut(pixels, header)
    check_voi_lut(header)
    try:
        values = apply_voi_lut(values, header)
    except (ValueError, OverflowError, struct.error) as exc:  # a window width below 1, an unknown VOI LUT Function;
        # VOI LUT data with entries wider than its descriptor says (OverflowError) or fewer of them (struct.error)
        raise ImageInputError(f"The DICOM window or VOI LUT cannot be applied ({exc}); {EXPORT}") from exc
    return window_to_uint8(values, *voi_output_range(header))


def check_voi_lut(header: Dataset) -> None:
    """Refuse a VOI LUT whose bits per entry the standard does not allow, which ``apply_voi_lut`` cannot read."""
    voi = header.get("VOILUTSequence")
    if voi and voi[0].get("LUTDescriptor"):
        bits = int(voi[0].LUTDescriptor[2])
        if bits not in VOI_LUT_BITS:
            raise ImageInputError(f"The DICOM VOI LUT has {bits} bits per entry, where the standard allows 8 or "
                                  f"10-16; {EXPORT}")


def voi_output_range(header: Dataset) -> tuple[float, float]:
    """The range ``apply_voi_lut`` maps onto: a VOI LUT's by its bits per entry; else the stored
    range (BitsStored) through the modality LUT, which a window spans (PS3.3 C.11.2.1.2)."""
    voi = header.get("VOILUTSequence")
    if voi and voi[0].get("LUTDescriptor") and voi[0].get("LUTData") is not None:
        return 0.0, float(2 ** int(voi[0].LUTDescriptor[2]) - 1)
    modality = header.get("ModalityLUTSequence")
    if modality:
        return 0.0, float(2 ** int(modality[0].LUTDescriptor[2]) - 1)
    bits = int(header.get("BitsStored") or header.BitsAllocated)
    signed = int(header.get("PixelRepresentation") or 0) == 1
    stored = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] if signed else [0, 2**bits - 1])
    ends = apply_modality_lut(stored, header)  # the rescale, where the file has one
    return float(ends.min()), float(ends.max())


def colour_to_gray(rgb: np.ndarray, bits: int) -> np.ndarray:
    """RGB samples of ``bits`` bits -> uint8 luma (ITU-R 601, as Pillow converts)."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageInputError("The DICOM image is neither grayscale nor RGB.")
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return window_to_uint8(luma, 0.0, float(2**bits - 1))
