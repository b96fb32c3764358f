"""Draw attention maps over X-rays: arrays in, RGB arrays or PNG bytes out.

Maps arrive scaled to 0-1; every map is drawn on the same 0-1 colour scale, resized to the image
by ``pipeline.upsample.upsample_map``, the resampling that made the maps, so the cells stay on their pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from plotly.colors import sample_colorscale, unlabel_rgb

from pipeline.upsample import upsample_map

# Shown name -> plotly colour scale.
COLORMAPS = {"Jet": "Jet", "Turbo": "Turbo", "Inferno": "Inferno", "Viridis": "Viridis", "Hot": "Hot"}
DISPLAY_SIZE = 384  # pixels: the panels of the one-model view
ROW_DISPLAY_SIZE = 256  # pixels: each model's row in the all-models view, three panels of up to five models
TITLE_HEIGHT = 28
BAR_HEIGHT = 16
GAP = 8
MAP_TITLES = ("Grad-CAM", "Grad-CAM++")
BOX_COLOUR = (255, 255, 255)  # white: only the top ends of "Hot" and "Inferno" come near it
BOX_LINE = 2  # pixels, at the panel's size
Box = tuple[float, float, float, float]  # x_min, y_min, x_max, y_max in pixels; x_max and y_max exclusive


@lru_cache(maxsize=len(COLORMAPS))
def colormap_lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for the colour scale ``name``."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; valid: {', '.join(COLORMAPS)}")
    colours = sample_colorscale(COLORMAPS[name], np.linspace(0.0, 1.0, 256).tolist(), colortype="rgb")
    return np.array([unlabel_rgb(colour) for colour in colours], dtype=np.float64).round().astype(np.uint8)


def colorize(cam: np.ndarray, colormap: str) -> np.ndarray:
    """0-1 map -> RGB uint8 through the colour map."""
    indices = np.round(np.clip(cam, 0.0, 1.0) * 255.0).astype(np.uint8)
    return colormap_lut(colormap)[indices]


def overlay(gray: np.ndarray, cam: np.ndarray, opacity: float, colormap: str) -> np.ndarray:
    """Blend the coloured map over the (size, size) grayscale image; the map is resized to it."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in 0-1, got {opacity}")
    coloured = Image.fromarray(colorize(upsample_map(cam, gray.shape[0]), colormap))
    return np.array(Image.blend(Image.fromarray(gray_rgb(gray)), coloured, opacity))  # in C, on bytes


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def attention_panels(gray: np.ndarray, maps: Sequence[np.ndarray], opacity: float, colormap: str,
                     titles: Sequence[str] = MAP_TITLES) -> list[tuple[str, np.ndarray]]:
    """The image, then one overlay per map under its title (Grad-CAM and Grad-CAM++ by default),
    as (title, RGB) pairs."""
    return [("Original", gray_rgb(gray))] + [
        (title, overlay(gray, cam, opacity, colormap)) for title, cam in zip(titles, maps, strict=True)
    ]


def draw_boxes(rgb: np.ndarray, boxes: Sequence[Box], reference_size: tuple[int, int],
               colour: tuple[int, int, int] = BOX_COLOUR, line: int = BOX_LINE) -> np.ndarray:
    """A copy of ``rgb`` with the outlines of (x_min, y_min, x_max, y_max) boxes drawn just inside them.

    The boxes are in pixels of a (width, height) ``reference_size`` image, scaled to ``rgb``'s size:
    the panels show the whole image squashed to a square, so x and y scale apart.
    """
    height, width = rgb.shape[:2]
    scale_x, scale_y = width / reference_size[0], height / reference_size[1]
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    for x_min, y_min, x_max, y_max in boxes:
        left, top = round(x_min * scale_x), round(y_min * scale_y)
        right, bottom = round(x_max * scale_x) - 1, round(y_max * scale_y) - 1  # x_max, y_max: exclusive edges
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
    return np.asarray(image)


def outline_panels(panels: Sequence[tuple[str, np.ndarray]], boxes: Sequence[Box],
                   reference_size: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """The same panels with the boxes drawn on each (see ``draw_boxes``)."""
    return [(title, draw_boxes(rgb, boxes, reference_size)) for title, rgb in panels]


def is_flat(cam: np.ndarray) -> bool:
    """True when a map carries no information (all values equal)."""
    return float(np.ptp(cam)) < 1e-6


def colorbar(colormap: str, width: int, height: int = BAR_HEIGHT) -> np.ndarray:
    """A horizontal strip from 0 (left) to 1 (right) of the colour map."""
    ramp = np.linspace(0.0, 1.0, width)[None, :].repeat(height, axis=0)
    return colorize(ramp, colormap)


def to_png(image: np.ndarray | Image.Image) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def panel_png(panels: Sequence[tuple[str, np.ndarray]], colormap: str, caption: str) -> bytes:
    """Equal-sized RGB panels side by side, each under its title, with the colour bar and a caption."""
    size = panels[0][1].shape[0]
    font = ImageFont.load_default(size=14)
    width = len(panels) * size + (len(panels) - 1) * GAP
    height = TITLE_HEIGHT + size + GAP + BAR_HEIGHT + 2 * TITLE_HEIGHT
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (title, rgb) in enumerate(panels):
        left = index * (size + GAP)
        draw.text((left + 4, 6), title, fill="black", font=font)
        canvas.paste(Image.fromarray(rgb), (left, TITLE_HEIGHT))
    bar_top = TITLE_HEIGHT + size + GAP
    canvas.paste(Image.fromarray(colorbar(colormap, width)), (0, bar_top))
    draw.text((4, bar_top + BAR_HEIGHT + 4), "low  <-  relative model attention (each map scaled to 0-1)  ->  high",
              fill="black", font=font)
    draw.text((4, bar_top + BAR_HEIGHT + TITLE_HEIGHT), caption, fill="black", font=font)
    return to_png(canvas)
