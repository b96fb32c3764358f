"""Do the maps point at what the model uses? Deletion and insertion curves.

Pixels are removed (deletion: replaced by a blurred copy of the image) or revealed (insertion:
from the blurred copy towards the image) in the order a map ranks them, in ``steps`` equal
shares; the probability of the explained class is recorded after each share. The area under
the curve is low for deletion and high for insertion when the map ranks the pixels the model
relies on first. A random order is the baseline every map should beat.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

DEFAULT_STEPS = 16
BLUR_RADIUS = 8


def blurred(image: np.ndarray, radius: int = BLUR_RADIUS) -> np.ndarray:
    """The image with its detail removed: what 'deleted' pixels become."""
    blur = ImageFilter.GaussianBlur(radius)
    channels = [Image.fromarray(np.clip(image[..., c], 0, 255).astype(np.uint8)).filter(blur)
                for c in range(image.shape[-1])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def curve(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, start: np.ndarray, order: np.ndarray,
          class_index: int, steps: int = DEFAULT_STEPS) -> np.ndarray:
    """Class probability as the pixels in ``order`` (flat indices) go from ``image`` to ``start``.

    Deletion: ``curve(predict, image, blurred(image), order, ...)``; insertion swaps the two.
    Returns ``steps + 1`` probabilities, from no pixel changed to all pixels changed.
    """
    height, width = image.shape[:2]
    rank = np.empty(height * width, dtype=np.int64)
    rank[order] = np.arange(height * width)
    rank = rank.reshape(height, width)
    cuts = np.linspace(0, height * width, steps + 1).round().astype(np.int64)
    batch = np.stack([np.where((rank < cut)[..., None], start, image) for cut in cuts]).astype(np.float32)
    return np.asarray(predict(batch))[:, class_index]


def area(values: np.ndarray) -> float:
    """Area under a curve sampled at equal steps from 0 to 1."""
    return float(np.trapezoid(values, dx=1.0 / (len(values) - 1)))


def map_order(cam: np.ndarray) -> np.ndarray:
    """Flat pixel indices, highest map value first (ties in a fixed order)."""
    return np.argsort(-cam.ravel(), kind="stable")


def scores(predict, image: np.ndarray, cam: np.ndarray, class_index: int, steps: int = DEFAULT_STEPS) -> dict:
    """Deletion and insertion areas of one map on one image."""
    base, order = blurred(image), map_order(cam)
    return {"deletion": area(curve(predict, image, base, order, class_index, steps)),
            "insertion": area(curve(predict, base, image, order, class_index, steps))}


def evaluate(attention, images: list[np.ndarray], steps: int = DEFAULT_STEPS, seed: int = 0) -> dict:
    """Mean deletion and insertion areas per method and for a random order, over ``images``.

    ``attention`` is a ``pipeline.attention.AttentionModel``; each image is explained for its
    predicted class.
    """
    rng = np.random.default_rng(seed)
    results: dict[str, list[dict]] = {name: [] for name in (*attention.methods, "random order")}
    for image in images:
        predicted = int(np.argmax(attention.probabilities(image)))
        maps = attention.maps(image, predicted)
        maps["random order"] = rng.random(image.shape[:2])
        for name, cam in maps.items():
            results[name].append(scores(attention.batch_probabilities, image, cam, predicted, steps))
    return {"n_images": len(images), "steps": steps,
            "methods": {name: {k: float(np.mean([r[k] for r in rows])) for k in ("deletion", "insertion")}
                        for name, rows in results.items()}}
