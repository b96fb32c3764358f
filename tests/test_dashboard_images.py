"""Decoding and checking of uploads: every PIL mode, EXIF, DICOM, and every way an upload can be bad."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from upload_corpus import dicom_bytes, encode, png_claiming, ramp, twelve_bit

from pipeline import images
from pipeline.images import ImageInputError, decode_image


def test_grayscale_png_round_trips():
    gray = ramp()
    decoded = decode_image(encode(Image.fromarray(gray, "L")))
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, gray)


def test_rgb_jpeg_becomes_grayscale():
    rgb = np.stack([ramp()] * 3, axis=-1)
    decoded = decode_image(encode(Image.fromarray(rgb, "RGB"), "JPEG", quality=95))
    assert decoded.shape == (64, 80)
    assert np.abs(decoded.astype(int) - ramp().astype(int)).max() <= 3


def test_rgba_is_composited_on_black():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :32, 3] = 255  # left half opaque, right half transparent
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA")))
    assert (decoded[:, :32] == 200).all() and (decoded[:, 32:] == 0).all()


def test_la_half_transparent():
    la = Image.merge("LA", [Image.new("L", (64, 64), 200), Image.new("L", (64, 64), 128)])
    assert abs(int(decode_image(encode(la))[0, 0]) - 100) <= 1


def test_palette_image_maps_through_its_palette():
    gray = ramp()
    decoded = decode_image(encode(Image.fromarray(gray, "L").convert("P")))
    assert np.abs(decoded.astype(int) - gray.astype(int)).max() <= 8


def test_cmyk_jpeg_is_converted():
    cmyk = Image.new("CMYK", (64, 64), (0, 0, 0, 0))  # no ink: white
    assert decode_image(encode(cmyk, "JPEG")).min() >= 250


def test_16_bit_png_is_scaled_by_its_bit_depth():
    values = np.tile(np.linspace(1000, 4000, 64), (64, 1)).astype(np.uint16)  # 12-bit data
    decoded = decode_image(encode(Image.fromarray(values)))
    assert np.array_equal(decoded, values // 16)  # the top 8 of 12 bits, not of 16


def test_exif_orientation_is_applied():
    gray = np.zeros((40, 100), np.uint8)
    gray[:, :10] = 255  # bright band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    decoded = decode_image(encode(Image.fromarray(gray, "L"), "JPEG", exif=exif, quality=95))
    assert decoded.shape == (100, 40)
    assert decoded[:10].mean() > 200 and decoded[-10:].mean() < 50  # the band is now on top


def test_large_images_are_kept_as_a_small_working_copy():
    decoded = decode_image(encode(Image.new("L", (2400, 1800), 90)))
    assert decoded.shape == (768, 1024)


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"this is not an image at all" * 10, "not a readable"),
    (encode(Image.new("L", (64, 64)), "GIF"), "not a readable"),
    (encode(Image.new("L", (20, 64))), "too small"),
    (encode(Image.new("L", (300, 60))), "too elongated"),
])
def test_bad_uploads_raise_a_user_message(data, words):
    with pytest.raises(ImageInputError) as error:
        decode_image(data)
    assert words in str(error.value) and "Accepted:" in str(error.value)


def test_truncated_png_is_reported():
    data = encode(Image.fromarray(ramp(200, 200), "L"))
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("side", [7000, 20000])  # over our limit; over Pillow's own bomb error
def test_decompression_bombs_are_refused_before_decoding(side):
    with pytest.raises(ImageInputError, match="decompression bomb"):
        decode_image(png_claiming(side, side))


def test_dicom_monochrome2_without_window_uses_min_max():
    decoded = decode_image(dicom_bytes(twelve_bit()), "scan.dcm")
    assert decoded[0, 0] == 0 and decoded[0, -1] == 255


def test_dicom_monochrome1_is_inverted():
    decoded = decode_image(dicom_bytes(twelve_bit(), "MONOCHROME1"), "scan")  # found by the DICM magic
    assert decoded[0, 0] == 255 and decoded[0, -1] == 0


def linear_window(value: float, center: float, width: float) -> float:
    """DICOM PS3.3 C.11.2.1.2.1 linear VOI function onto 0-255."""
    return float(np.clip(((value - (center - 0.5)) / (width - 1) + 0.5), 0, 1) * 255)


@pytest.mark.parametrize("intercept", [0, -1024])
def test_dicom_window_is_applied_after_the_rescale(intercept):
    stored = twelve_bit()
    decoded = decode_image(dicom_bytes(stored, RescaleSlope=1, RescaleIntercept=intercept,
                                       WindowCenter=2048 + intercept, WindowWidth=1024), "scan.dcm")
    expected = [linear_window(float(v) + intercept, 2048 + intercept, 1024) for v in stored[0]]
    assert decoded[0, 0] == 0 and decoded[0, -1] == 255  # outside the window: clipped
    assert np.abs(decoded[0].astype(float) - expected).max() <= 1.0


def test_dicom_without_pixel_data_is_named():
    with pytest.raises(ImageInputError, match="no pixel data"):
        decode_image(dicom_bytes(twelve_bit(), with_pixels=False), "report.dcm")


def test_non_dicom_file_named_dcm_is_refused():
    with pytest.raises(ImageInputError, match="not a readable DICOM"):
        decode_image(b"\x00" * 300, "scan.dcm")


def test_model_input_is_rgb_float_0_255():
    batch = images.model_input(ramp(), 32)
    assert batch.shape == (32, 32, 3) and batch.dtype == np.float32
    assert batch.min() >= 0 and batch.max() <= 255
    assert np.array_equal(batch[..., 0], batch[..., 2])


def test_digest_depends_on_pixels_and_shape():
    gray = ramp()
    assert images.image_digest(gray) == images.image_digest(gray.copy())
    assert images.image_digest(gray) != images.image_digest(gray.reshape(80, 64))
