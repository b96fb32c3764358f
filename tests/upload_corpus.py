"""Files a user might upload, good and bad, and what the explain page makes of each.

``build_corpus`` writes the files; ``explain_directly`` feeds one through the functions the
explain page calls (decode, model input, prediction, both maps) and ``explain_on_page`` through
the page itself (AppTest). Both return an ``Outcome``; ``run_corpus`` does all three and
``outcome_table`` counts the outcomes.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from drivers import PAGE_TIMEOUT_S, PAGES, models_dir_env, open_page
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from streamlit.testing.v1 import AppTest

from dashboard.samples import SAMPLES_DIR
from pipeline.images import ImageInputError, decode_image, model_input

if TYPE_CHECKING:
    from dashboard.explain import Explainer

ACCEPTED, REFUSED, CRASHED, WRONG = "accepted", "refused", "crashed", "wrong result"
SAMPLE = SAMPLES_DIR / "covid19-ieee8023-bb0e626a.jpg"
BOMB_SIDE = 20_000


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def ramp(height: int = 64, width: int = 80) -> np.ndarray:
    return np.tile(np.linspace(0, 255, width), (height, 1)).round().astype(np.uint8)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's first bytes."""
    data = bytearray(encode(Image.new("L", (8, 8))))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def png_16_bit(samples: np.ndarray) -> bytes:
    """A 16-bit PNG of (height, width, channels) samples: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.

    Pillow writes 16 bits for gray only, so the chunks are written here (filter type 0, one IDAT).
    """
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", with_pixels: bool = True,
                **tags) -> bytes:
    """A DICOM file of ``pixels``: (rows, columns) or (frames, rows, columns), with a last axis of
    samples where ``tags`` set SamplesPerPixel; 16-bit with 12 bits stored unless ``tags`` say otherwise."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in tags.items():
        setattr(ds, key, value)
    shape = pixels.shape[:-1] if ds.SamplesPerPixel > 1 else pixels.shape
    ds.Rows, ds.Columns = shape[-2:]
    if len(shape) == 3:
        ds.NumberOfFrames = shape[0]
    if with_pixels:
        ds.PixelData = pixels.astype(f"<u{ds.BitsAllocated // 8}").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def twelve_bit() -> np.ndarray:
    return np.tile(np.linspace(0, 4095, 64), (64, 1)).round().astype(np.uint16)


def _saved(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def rle_dicom(frames: int, side: int = 2048) -> bytes:
    """``frames`` RLE Lossless frames of side x side 8-bit pixels, dark rows at the top (4 MB each
    decoded, 64 kB each stored): one frame compressed once and repeated."""
    rows = np.repeat(np.linspace(0, 255, side).round().astype(np.uint8)[:, None], side, axis=1)
    ds = dcmread(io.BytesIO(dicom_bytes(rows, BitsAllocated=8, BitsStored=8, HighBit=7)))
    ds.compress(RLELossless, encoding_plugin="pydicom")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData, ds.NumberOfFrames = encapsulate([frame] * frames), frames
    return _saved(ds)


def undecodable_dicom(syntax: str = JPEGLSLossless) -> bytes:
    """A DICOM file whose pixel data claims ``syntax``: JPEG-LS, which no installed plugin decodes, or one
    that pydicom has no decoder for at all (MPEG2, a private UID)."""
    ds = dcmread(io.BytesIO(dicom_bytes(twelve_bit())))
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\xd8 not decoded \xff\xd9"])
    return _saved(ds)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _exif_rotated() -> bytes:
    gray = ramp(40, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    return encode(Image.fromarray(gray, "L"), "JPEG", exif=exif, quality=95)


def _rgba() -> Image.Image:
    rgba = np.zeros((64, 80, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = ramp()[..., None], 255
    rgba[:, 60:, 3] = 0  # a transparent band
    return Image.fromarray(rgba, "RGBA")


# name -> (bytes, words of the expected refusal or None when a prediction is expected,
#          decoded (height, width) expected for accepted files)
BUILDERS: dict[str, tuple[Callable[[], bytes], str | None, tuple[int, int] | None]] = {
    "empty.png": (lambda: b"", "empty", None),
    "truncated.png": (lambda: _half(encode(Image.fromarray(ramp(200, 200), "L"))), "damaged or truncated", None),
    "truncated.jpg": (lambda: _half(encode(Image.fromarray(ramp(200, 200), "L"), "JPEG")), "damaged or truncated",
                      None),
    "random-bytes.png": (lambda: np.random.default_rng(7).bytes(4096), "not a readable", None),
    "notes.jpg": (lambda: b"Patient notes, not an image.\n" * 20, "not a readable", None),
    "bomb-20000x20000.png": (lambda: png_claiming(BOMB_SIDE, BOMB_SIDE), "decompression bomb", None),
    "one-pixel.png": (lambda: encode(Image.new("L", (1, 1), 128)), "too small", None),
    "strip-5000x10.png": (lambda: encode(Image.new("L", (5000, 10), 128)), "too small", None),
    "gray-16-bit.png": (lambda: encode(Image.fromarray(ramp().astype(np.uint16) * 200 + 1000)), None, (64, 80)),
    "rgb-16-bit.png": (lambda: png_16_bit(np.repeat(ramp()[..., None].astype(np.uint16) * 16, 3, axis=2)), None,
                       (64, 80)),
    "rgba.png": (lambda: encode(_rgba()), None, (64, 80)),
    "palette.png": (lambda: encode(Image.fromarray(ramp(), "L").convert("P")), None, (64, 80)),
    "la.png": (lambda: encode(Image.fromarray(ramp(), "L").convert("LA")), None, (64, 80)),
    "cmyk.jpg": (lambda: encode(Image.fromarray(ramp(), "L").convert("CMYK"), "JPEG"), None, (64, 80)),
    "exif-rotated.jpg": (_exif_rotated, None, (100, 40)),
    "monochrome1.dcm": (lambda: dicom_bytes(twelve_bit(), "MONOCHROME1"), None, (64, 64)),
    "monochrome2.dcm": (lambda: dicom_bytes(twelve_bit(), "MONOCHROME2"), None, (64, 64)),
    "no-pixel-data.dcm": (lambda: dicom_bytes(twelve_bit(), with_pixels=False), "no pixel data", None),
    "jpeg-ls.dcm": (undecodable_dicom, "cannot be decoded here", None),
    "rle-40-frames.dcm": (lambda: rle_dicom(40), None, (1024, 1024)),
    "rle-bomb-300-frames.dcm": (lambda: rle_dicom(300), "too large", None),
    SAMPLE.name: (SAMPLE.read_bytes, None, (224, 224)),
}


@dataclass(frozen=True)
class Upload:
    path: Path
    refusal: str | None  # words the refusal must contain; None: a prediction is expected
    shape: tuple[int, int] | None  # decoded (height, width) of an accepted file

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class Outcome:
    name: str
    kind: str  # ACCEPTED, REFUSED, CRASHED or WRONG
    detail: str  # accepted: the top class; otherwise the message shown or the problem found

    def problem(self) -> str:
        """The refusal without its list of accepted formats, and sizes in parentheses dropped."""
        return re.sub(r" \([^)]*\d[^)]*\)", "", self.detail.split(" Accepted:")[0])

    def label(self) -> str:
        return {ACCEPTED: "accepted: prediction and both maps", REFUSED: f"refused: {self.problem()}"}.get(
            self.kind, f"{self.kind}: {self.detail}")


def build_corpus(folder: Path) -> list[Upload]:
    """Write every file of the corpus into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    uploads = []
    for name, (build, refusal, shape) in BUILDERS.items():
        path = folder / name
        path.write_bytes(build())
        uploads.append(Upload(path, refusal, shape))
    return uploads


def _result_problems(probabilities: np.ndarray, maps: tuple[np.ndarray, ...], classes: int, size: int) -> list[str]:
    problems = []
    if probabilities.shape != (classes,) or not np.all(np.isfinite(probabilities)):
        problems.append(f"outputs of shape {probabilities.shape}, finite: {np.all(np.isfinite(probabilities))}")
    elif probabilities.min() < 0 or abs(probabilities.sum() - 1.0) > 1e-4:
        problems.append(f"outputs do not sum to 1 ({probabilities.sum():.6f})")
    for title, cam in zip(("Grad-CAM", "Grad-CAM++"), maps):
        if cam.shape != (size, size) or not np.all(np.isfinite(cam)) or cam.min() < 0 or cam.max() > 1:
            problems.append(f"{title} map of shape {cam.shape} outside 0-1 or not finite")
    return problems


def explain_directly(upload: Upload, explainer: Explainer) -> Outcome:
    """The explain page's path without the page: decode, model input, outputs, both maps of the top class."""
    try:
        gray = decode_image(upload.data, upload.name)
        image = model_input(gray, explainer.input_size)
        probabilities = explainer.probabilities(image)
        top = int(np.argmax(probabilities))
        maps = explainer.maps(image, top)
    except ImageInputError as exc:
        return Outcome(upload.name, REFUSED, str(exc))
    except Exception as exc:  # a crash is an outcome to count, not a reason to stop
        return Outcome(upload.name, CRASHED, f"{type(exc).__name__}: {exc}")
    problems = _result_problems(probabilities, maps, len(explainer.classes), explainer.input_size)
    if upload.shape is not None and gray.shape != upload.shape:
        problems.append(f"decoded as {gray.shape}, expected {upload.shape}")
    if problems:
        return Outcome(upload.name, WRONG, "; ".join(problems))
    return Outcome(upload.name, ACCEPTED, explainer.classes[top])


def explain_on_page(app: AppTest, upload: Upload, timeout: float) -> Outcome:
    """Upload into the explain page of ``app`` (AppTest, already on that page) and read what it shows."""
    app.file_uploader(key="explain-upload").set_value((upload.name, upload.data, "application/octet-stream"))
    app.run(timeout=timeout)
    if app.exception:
        return Outcome(upload.name, CRASHED, "; ".join(str(e.value) for e in app.exception))
    errors = [str(e.value) for e in app.error]
    captions = [caption for image in app.image for caption in image.captions]
    if errors:
        shown_maps = [c for c in captions if c.startswith("Grad-CAM")]
        return Outcome(upload.name, REFUSED if len(errors) == 1 and not shown_maps else WRONG, " | ".join(errors))
    if captions.count("Grad-CAM") != 1 or captions.count("Grad-CAM++") != 1:
        return Outcome(upload.name, WRONG, f"no error and no pair of maps (images: {captions})")
    explained = next(box.value for box in app.selectbox if box.label == "Explain the class")
    return Outcome(upload.name, ACCEPTED, str(explained))


def run_corpus(models_dir: Path, folder: Path) -> list[tuple[Upload, Outcome, Outcome]]:
    """Build the corpus in ``folder``; each file with its outcome through the functions and on the page.

    The page (one AppTest session for all files) uses its default model; the functions use the same one.
    """
    from dashboard.explain import Explainer

    uploads = build_corpus(folder)
    with models_dir_env(models_dir):
        app = open_page(PAGES[1])
        on_page = [explain_on_page(app, upload, PAGE_TIMEOUT_S) for upload in uploads]
    explainer = Explainer(models_dir / app.selectbox(key="explain-model").value)
    return [(upload, explain_directly(upload, explainer), page) for upload, page in zip(uploads, on_page)]


def outcome_table(results: list[tuple[Upload, Outcome, Outcome]]) -> str:
    """A markdown table of ``run_corpus`` results: how many files had each outcome, each way."""
    columns = {"through the functions": [direct for _, direct, _ in results],
               "on the explain page": [page for _, _, page in results]}
    counts = {title: Counter(outcome.label() for outcome in outcomes) for title, outcomes in columns.items()}
    labels = sorted({label for counter in counts.values() for label in counter},
                    key=lambda label: (not label.startswith(ACCEPTED), label))
    lines = ["| outcome | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(str(counts[title][label]) for title in columns) + " |" for label in labels]
    lines.append("| total | " + " | ".join(str(len(outcomes)) for outcomes in columns.values()) + " |")
    return "\n".join(lines)
