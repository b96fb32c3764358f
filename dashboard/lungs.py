"""Lung regions on the explain page: the lung segmenter's mask of any image, its outline on a
panel, and each map's share of energy inside a lung region beside a uniform map's share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from pipeline.audit import energy_inside, resize_region
from pipeline.config import LUNGS_DIR_NAME
from pipeline.errors import ArtifactError

MASK_COLOUR = (255, 0, 255)  # magenta: apart from the white lung boxes and from every colour map's ends
MASK_LINE = 2  # pixels, at the panel's size
ABOUT_PREDICTED = (
    "Magenta outlines: the lungs as the project's lung segmenter (a small U-Net, `saved_models/lungs`) predicts "
    "them for this image, the region behind the heart included: a model's guess to check against the image, "
    "not a diagnosis."
)


class LungRegion(ABC):
    """A lung region that can be squashed to a square of any size: ``region(size)``."""

    @abstractmethod
    def region(self, size: int) -> np.ndarray:
        """The region as a (size, size) boolean mask."""

    def share_inside(self, cam: np.ndarray) -> float | None:
        """Share of a square map's energy inside the region, as the lung-attention audit scores it; None if empty."""
        return energy_inside(cam, self.region(cam.shape[0]))

    def shares_text(self, titles: Sequence[str], maps: Sequence[np.ndarray]) -> str:
        """Each map's share of energy inside the region, e.g. "Grad-CAM 71%, Grad-CAM++ empty"."""
        shares = ("empty" if share is None else f"{share:.0%}" for share in map(self.share_inside, maps))
        return ", ".join(f"{title} {share}" for title, share in zip(titles, shares))

    def uniform_share(self, size: int) -> float:
        """The share a uniform (size, size) map puts inside the region: the audit's baseline."""
        return float(self.region(size).mean())


@dataclass(frozen=True, eq=False)
class PredictedLungs(LungRegion):
    """The segmenter's mask of one image: bool, square, at the segmenter's input size."""

    mask: np.ndarray

    def region(self, size: int) -> np.ndarray:
        return self.mask if self.mask.shape[0] == size else resize_region(self.mask, size)

    def caption(self, titles: Sequence[str], maps: Sequence[np.ndarray]) -> str:
        return (f"Share of each map's energy inside the predicted lungs: {self.shares_text(titles, maps)}; "
                f"a uniform map would put {self.uniform_share(maps[0].shape[0]):.0%} there.")


def border(mask: np.ndarray, size: int, line: int = MASK_LINE) -> np.ndarray:
    """Bool (size, size): the pixels of a ``line``-wide border of ``mask`` squashed to ``size``."""
    inside = resize_region(mask, size)
    return inside & ~ndimage.binary_erosion(inside, iterations=line)


def outline_panels(panels: Sequence[tuple[str, np.ndarray]], mask: np.ndarray,
                   colour: tuple[int, int, int] = MASK_COLOUR) -> list[tuple[str, np.ndarray]]:
    """Copies of the equal-sized square panels with the border of ``mask`` drawn on each."""
    edge = border(mask, panels[0][1].shape[0])
    drawn = [(title, rgb.copy()) for title, rgb in panels]
    for _, rgb in drawn:
        rgb[edge] = colour
    return drawn


def segmenter_folder(models_root: Path) -> Path:
    return Path(models_root) / LUNGS_DIR_NAME


def segmenter_problem(folder: Path) -> str | None:
    """Why the page cannot outline the lungs, in words for the user, or None when it can try."""
    from pipeline.artifacts import check_model_file, is_segmenter

    if not folder.is_dir():
        return (f"No lung segmenter in `{folder}`, so the page draws no lung outlines "
                "(train one: `python -m pipeline train-lungs --data-dir LUNG_MASKS_DIR`).")
    if not is_segmenter(folder):
        return f"`{folder}` holds no lung segmenter (its config.json is missing, unreadable or of another model)."
    try:
        check_model_file(folder)
    except ArtifactError as exc:
        return f"The lung segmenter cannot be used ({exc}); the page draws no lung outlines."
    return None


def warm_up(model, size: int) -> None:
    """Run the segmenter once on a blank image of its input size.

    ``pipeline.lungs`` compiles the segmenter's inference into a ``tf.function`` traced on its first call
    (0.56 s in one process here, against 13-26 ms for the next calls); the loader calls this so that tracing
    happens at load time, not on a user's first upload. The input has the shape of every later call, so
    none retraces.
    """
    from pipeline.lungs import predict_masks

    predict_masks(model, np.zeros((1, size, size, 3), np.float32))


def predict_mask(model, gray: np.ndarray, size: int) -> np.ndarray:
    """The segmenter's bool (size, size) lung mask of a decoded grayscale image."""
    from pipeline import images
    from pipeline.lungs import predict_masks

    return predict_masks(model, images.model_input(gray, size)[None])[0]

