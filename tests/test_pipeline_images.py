"""One way from a file to the model input (pipeline/images.py): the same array through training,
evaluation, the audit and the app; 16-bit files by their bit depth; DICOM through pydicom's API."""

from __future__ import annotations

import csv
import re
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SUBSET, needs, run_cli
from PIL import Image, ImageOps
from pydicom.dataset import Dataset
from upload_corpus import dicom_bytes, encode, png_16_bit, rle_dicom, undecodable_dicom

from pipeline import evaluate
from pipeline.data import scan_dataset
from pipeline.images import ImageInputError, decode_image, file_to_model_input, model_input, orient, read_image

SIZE = 64
MOBILENET = REPO / "saved_models" / "MobileNet"
MB = 1024 * 1024


def xray_like(height: int = 96, width: int = 80) -> np.ndarray:
    """8-bit, lopsided, with detail at several scales: any change of scaling, orientation or resizing shows."""
    ys, xs = np.mgrid[0:height, 0:width]
    disc = (ys - height / 3) ** 2 + (xs - width / 3) ** 2 < (width / 4) ** 2
    return np.clip(40 + 150 * xs / width + 50 * disc + 15 * (xs % 3 == 0), 0, 255).round().astype(np.uint8)


def corpus() -> dict[str, bytes]:
    gray = xray_like()
    stored = gray.astype(np.uint16) * 16  # 12-bit values
    rgba = np.dstack([gray, gray, gray, np.where(np.arange(80) < 60, 255, 0)[None].repeat(96, 0)]).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    window = {"WindowCenter": 2000, "WindowWidth": 3000}
    return {
        "gray-8-bit.png": encode(Image.fromarray(gray, "L")),
        "gray-16-bit-12-bit-data.png": encode(Image.fromarray(stored)),
        "rgb.png": encode(Image.fromarray(np.dstack([gray, gray // 2, 255 - gray]), "RGB")),
        "rgba.png": encode(Image.fromarray(rgba, "RGBA")),
        "palette.png": encode(Image.fromarray(gray, "L").convert("P")),
        "exif-rotated.jpg": encode(Image.fromarray(gray, "L"), "JPEG", exif=exif, quality=95),
        "monochrome1-window.dcm": dicom_bytes(stored, "MONOCHROME1", **window),
        "monochrome2-window.dcm": dicom_bytes(stored, "MONOCHROME2", **window),
        "multi-frame.dcm": dicom_bytes(np.stack([stored, 4095 - stored, stored // 2])),
    }


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory) -> Path:
    """The corpus as training data: class folders of PNG, JPEG and DICOM files."""
    root = tmp_path_factory.mktemp("corpus")
    for i, (name, data) in enumerate(corpus().items()):
        folder = root / ("COVID", "Normal")[i % 2]
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    return root


def identity_model(size: int):
    """A 'model' whose predictions are its flattened input: what the evaluate path feeds a model."""
    import keras

    return keras.Sequential([keras.Input((size, size, 3)), keras.layers.Flatten()])


def test_training_evaluation_and_uploads_give_every_file_the_same_model_input(corpus_folder):
    from pipeline.inputs import make_dataset

    dataset = scan_dataset(corpus_folder)
    assert not dataset.skipped and sorted(Path(s.path).name for s in dataset.samples) == sorted(corpus())
    paths, labels = [s.path for s in dataset.samples], [s.label for s in dataset.samples]
    expected = np.stack([file_to_model_input(path, SIZE) for path in paths])
    ways = {
        "training batches": np.concatenate([x.numpy() for x, _ in make_dataset(paths, labels, SIZE, 4)]),
        "evaluate": evaluate.predict_samples(identity_model(SIZE), dataset.samples, 4).reshape(expected.shape),
        "upload": np.stack([model_input(decode_image(Path(p).read_bytes(), Path(p).name), SIZE) for p in paths]),
    }
    for way, arrays in ways.items():
        assert np.array_equal(arrays, expected), f"{way} differs from file_to_model_input"
    assert len({a.tobytes() for a in expected}) >= len(paths) - 2  # 8 and 16-bit, MONOCHROME1 and 2 may match


def test_the_audit_feeds_the_model_what_file_to_model_input_gives(corpus_folder, models_dir, tmp_path, monkeypatch):
    from pipeline.attention import AttentionModel
    from pipeline.audit import BOXES_FILE, audit_model_dir

    model_dir = shutil.copytree(models_dir / "SmallCNN", tmp_path / "SmallCNN")
    names = sorted(n for n in corpus() if not n.endswith(".dcm"))  # the audit sizes lung boxes with Pillow
    references = tmp_path / "references"
    references.mkdir()
    with (references / BOXES_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "lung", "x_min", "y_min", "x_max", "y_max"])
        for name in names:
            shutil.copy(next(corpus_folder.glob(f"*/{name}")), references / name)
            writer.writerow([name, "left", 5, 5, 35, 60])
    seen, original = [], AttentionModel.probabilities
    monkeypatch.setattr(AttentionModel, "probabilities", lambda self, x: seen.append(x) or original(self, x))
    audit_model_dir(model_dir, references, faithfulness_images=0)
    size = seen[0].shape[0]
    assert len(seen) == len(names)
    for name, image in zip(names, seen):
        assert np.array_equal(image, file_to_model_input(references / name, size)), name


@pytest.mark.parametrize("factor", [257, 16])
def test_the_16_bit_copy_of_an_8_bit_xray_decodes_to_the_8_bit_values(factor):
    gray = xray_like()
    assert np.array_equal(decode_image(encode(Image.fromarray(gray.astype(np.uint16) * factor))), gray)


@pytest.mark.parametrize("channels", ["RGB", "RGBA", "LA"])
def test_a_16_bit_colour_png_of_a_12_bit_xray_decodes_like_its_8_bit_values(channels):
    gray = xray_like()
    stored = gray.astype(np.uint16) * 16
    samples = {"RGB": [stored] * 3, "RGBA": [stored] * 3 + [np.full_like(stored, 65535)],
               "LA": [stored, np.full_like(stored, 65535)]}[channels]
    assert np.array_equal(decode_image(png_16_bit(np.dstack(samples))), gray)


def test_a_16_bit_rgba_png_composites_its_transparency_on_black_like_an_8_bit_one():
    gray = xray_like()
    alpha = np.where(np.arange(gray.shape[1]) < 60, 255, 0)[None].repeat(gray.shape[0], 0).astype(np.uint8)
    eight_bit = encode(Image.fromarray(np.dstack([gray] * 3 + [alpha]), "RGBA"))
    sixteen_bit = png_16_bit(np.dstack([gray.astype(np.uint16) * 257] * 3 + [alpha.astype(np.uint16) * 257]))
    assert np.array_equal(decode_image(sixteen_bit), decode_image(eight_bit))


def test_a_damaged_16_bit_colour_png_is_refused_as_damaged():
    data = png_16_bit(np.dstack([xray_like().astype(np.uint16) * 16] * 3))
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_turns_an_array_as_pillow_turns_the_image(orientation):
    gray = xray_like()
    image = Image.fromarray(gray, "L")
    image.getexif()[0x0112] = orientation
    assert np.array_equal(orient(gray, orientation), np.asarray(ImageOps.exif_transpose(image)))


@needs(SUBSET)
@pytest.mark.slow
def test_a_16_bit_png_of_an_xray_gets_the_prediction_of_its_8_bit_file(tmp_path, caplog, monkeypatch):
    from pipeline.model import load_trained_model

    with (SUBSET / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = [next(r for r in rows if r["label"] == label) for label in ("COVID", "Normal", "Viral Pneumonia")]
    grays = [np.asarray(Image.open(SUBSET / r["path"]).convert("L")) for r in chosen]
    versions = {"8-bit": lambda g: g, "16-bit-v257": lambda g: g.astype(np.uint16) * 257,
                "16-bit-v16": lambda g: g.astype(np.uint16) * 16}
    predicted, uploads = [], {}
    original = evaluate.predict_samples
    monkeypatch.setattr(evaluate, "predict_samples", lambda *a: predicted.append(original(*a)) or predicted[-1])
    for version, convert in versions.items():
        uploads[version] = [encode(Image.fromarray(convert(g))) for g in grays]
        for row, data in zip(chosen, uploads[version]):
            (tmp_path / version / row["label"]).mkdir(parents=True)
            (tmp_path / version / row["label"] / "x-ray.png").write_bytes(data)
        code, errors = run_cli(["evaluate", "--model", str(MOBILENET), "--data-dir", str(tmp_path / version),
                                "--json"], caplog)
        assert code == 0, errors
    assert len(predicted) == 3 and len(set(predicted[0].argmax(axis=1))) > 1  # not one answer for all
    for probabilities in predicted[1:]:
        np.testing.assert_array_equal(probabilities, predicted[0])
    model, _ = load_trained_model(MOBILENET)
    for version, files in uploads.items():
        app = model.predict(np.stack([model_input(decode_image(data, "x-ray.png"), 224) for data in files]), verbose=0)
        np.testing.assert_allclose(app, predicted[0], atol=1e-5, err_msg=version)


def test_read_image_names_the_file(tmp_path):
    with pytest.raises(ImageInputError, match="missing.png cannot be read"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 300)
    with pytest.raises(ImageInputError, match=r"broken\.dcm: The file is not a readable DICOM file"):
        read_image(tmp_path / "broken.dcm")


def test_an_unreadable_training_file_is_skipped_by_the_same_decoder(corpus_folder, tmp_path):
    shutil.copytree(corpus_folder, tmp_path / "data")
    (tmp_path / "data" / "COVID" / "tiny.dcm").write_bytes(dicom_bytes(np.zeros((8, 8))))  # too small for any model
    assert [Path(p).name for p in scan_dataset(tmp_path / "data").skipped] == ["tiny.dcm"]


def test_a_multi_frame_dicom_gives_its_first_frame():
    frames = np.stack([xray_like(), 255 - xray_like()]).astype(np.uint16) * 16
    first = decode_image(dicom_bytes(frames[:1][0]), "one.dcm")
    assert np.array_equal(decode_image(dicom_bytes(frames), "two.dcm"), first)


def test_a_dicom_without_a_window_is_scaled_by_its_bits_stored():
    stored = (xray_like().astype(np.uint16) * 4).astype(np.uint16)  # 0-1020 of 12 bits stored
    decoded = decode_image(dicom_bytes(stored), "scan.dcm")
    assert np.array_equal(decoded, np.round(stored / 4095 * 255))


def test_a_dicom_voi_lut_sequence_is_applied():
    stored = xray_like().astype(np.uint16) * 16
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new("LUTData", "OW", np.arange(4095, -1, -1, dtype="<u2").tobytes())  # inverts
    decoded = decode_image(dicom_bytes(stored, VOILUTSequence=[item]), "scan.dcm")
    np.testing.assert_allclose(decoded, np.round((4095 - stored) / 4095 * 255), atol=0)


def test_a_dicom_sigmoid_window_follows_the_voi_lut_function():
    stored = xray_like().astype(np.uint16) * 16
    decoded = decode_image(dicom_bytes(stored, WindowCenter=2048, WindowWidth=1024, VOILUTFunction="SIGMOID"),
                           "scan.dcm")
    expected = 255 / (1 + np.exp(-4 * (stored - 2048.0) / 1024))  # PS3.3 C.11.2.1.3.1
    np.testing.assert_allclose(decoded, expected, atol=0.51)


def voi_lut_of_bits(bits: int, entries: int = 4096, values: np.ndarray | None = None) -> Dataset:
    """A VOI LUT item whose descriptor says ``entries`` of ``bits`` bits: a ramp unless ``values`` are given."""
    if values is None:
        values = np.arange(entries) * (2 ** min(bits, 16) - 1) // (entries - 1)
    item = Dataset()
    item.LUTDescriptor = [entries, 0, bits]
    item.add_new("LUTData", "OW", values.astype("<u2").tobytes())
    return item


@pytest.mark.parametrize("tags, detail", [
    ({"WindowCenter": 2048, "WindowWidth": 0}, "Window Width must be greater than or equal to 1"),
    ({"WindowCenter": 2048, "WindowWidth": 1024, "VOILUTFunction": "CUBIC"}, "VOI LUT Function value 'CUBIC'"),
    ({"VOILUTSequence": [voi_lut_of_bits(8, values=np.arange(4096))]}, "out of bounds"),  # entries above 8 bits
    ({"VOILUTSequence": [voi_lut_of_bits(12, values=np.arange(100))]}, "unpack_from requires"),  # too few entries
])
def test_a_dicom_window_or_voi_lut_that_cannot_be_applied_is_refused_by_name(tags, detail):
    with pytest.raises(ImageInputError, match="The DICOM window or VOI LUT cannot be applied") as raised:
        decode_image(dicom_bytes(xray_like().astype(np.uint16) * 16, **tags), "scan.dcm")
    assert detail in str(raised.value) and "export it as uncompressed DICOM, PNG or JPEG" in str(raised.value)


@pytest.mark.parametrize("bits", [9, 17])
def test_a_voi_lut_of_a_bit_depth_the_standard_does_not_allow_is_refused_by_name(bits):
    with pytest.raises(ImageInputError, match=f"VOI LUT has {bits} bits per entry, where the standard allows 8 or"):
        decode_image(dicom_bytes(xray_like().astype(np.uint16) * 16, VOILUTSequence=[voi_lut_of_bits(bits)]),
                     "scan.dcm")


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_a_voi_lut_of_an_allowed_bit_depth_is_applied(bits):
    gray = decode_image(dicom_bytes(xray_like().astype(np.uint16) * 16, VOILUTSequence=[voi_lut_of_bits(bits)]),
                        "scan.dcm")
    assert gray.dtype == np.uint8 and gray.max() > gray.min()


def test_an_rgb_dicom_becomes_its_luma():
    gray = xray_like()
    rgb = np.dstack([gray, gray // 2, 255 - gray])
    decoded = decode_image(dicom_bytes(rgb, "RGB", SamplesPerPixel=3, PlanarConfiguration=0, BitsAllocated=8,
                                       BitsStored=8, HighBit=7), "colour.dcm")
    expected = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    assert np.abs(decoded.astype(int) - expected).max() <= 1


def test_a_palette_colour_dicom_maps_through_its_palette():
    gray = xray_like()
    channels = ("Red", "Green", "Blue")
    palette = {f"{c}PaletteColorLookupTableDescriptor": [256, 0, 16] for c in channels}
    palette |= {f"{c}PaletteColorLookupTableData": ((255 - np.arange(256, dtype="<u2")) * 257).tobytes()
                for c in channels}  # an inverting gray palette
    decoded = decode_image(dicom_bytes(gray, "PALETTE COLOR", BitsAllocated=8, BitsStored=8, HighBit=7, **palette),
                           "palette.dcm")
    assert np.array_equal(decoded, 255 - gray)


@pytest.mark.parametrize("syntax, name", [
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression"),  # a decoder whose plugin is not installed
    ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),  # pydicom has no decoder for it
    ("1.2.3.4.5", "1.2.3.4.5"),  # a private syntax
])
def test_a_transfer_syntax_without_a_decoder_is_named(syntax, name):
    with pytest.raises(ImageInputError, match=f"stored as {re.escape(name)}, which cannot be decoded"):
        decode_image(undecodable_dicom(syntax), "scan.dcm")


@pytest.mark.parametrize("frames, refused", [(300, True), (40, False)], ids=["300 frames", "40 frames"])
def test_a_compressed_multi_frame_dicom_costs_one_frame_at_most(frames, refused):
    data = rle_dicom(frames)  # 1.2 GB (refused before decoding) or 168 MB decoded
    tracemalloc.start()
    start = time.process_time()  # CPU seconds: the same on a busy machine
    try:
        outcome = decode_image(data, "bomb.dcm")
    except ImageInputError as exc:
        outcome = exc
    elapsed, (_, peak) = time.process_time() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 100 * MB, (elapsed, peak / MB)
    if refused:
        assert isinstance(outcome, ImageInputError) and "too large" in str(outcome)
    else:
        assert isinstance(outcome, np.ndarray) and outcome.shape == (1024, 1024)
        assert outcome[0].max() < 5 and outcome[-1].min() > 250  # frame 0's rows: dark at the top
