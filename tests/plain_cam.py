"""Plain tf-keras-vis, the reference the project's attention maps must equal."""

from __future__ import annotations

import keras
import numpy as np
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from pipeline.attention import CAM_METHODS
from pipeline.upsample import unit_map

VISUALIZERS = {"Grad-CAM": Gradcam, "Grad-CAM++": GradcamPlusPlus, "Score-CAM": Scorecam, "Layer-CAM": Layercam}
MIN_GRID = 7  # a CAM grid smaller than this gives maps too coarse for any comparison to mean much


def cam_grid(model: keras.Model, layer: str) -> tuple[int, int]:
    return tuple(model.get_layer(layer).output.shape[1:3])


class PlainCam:
    """tf-keras-vis on ``model`` itself (cloned, softmax made linear), as its README shows, but at
    the CAM layer's grid (``expand_cam=False``) and upsampled as the project upsamples."""

    def __init__(self, model: keras.Model, layer: str, methods: tuple[str, ...]):
        self.layer = layer
        self.visualizers = {m: VISUALIZERS[m](model, model_modifier=ReplaceToLinear(), clone=True) for m in methods}

    def maps(self, image: np.ndarray, class_index: int) -> dict[str, np.ndarray]:
        maps = {}
        for method, visualizer in self.visualizers.items():
            grid = visualizer(CategoricalScore([class_index]), image[None], penultimate_layer=self.layer,
                              seek_penultimate_conv_layer=False, expand_cam=False, **CAM_METHODS[method].arguments)
            maps[method] = unit_map(np.asarray(grid)[0], image.shape[0])
        return maps


def assert_maps_equal_plain(ours: dict[str, np.ndarray], plain: dict[str, np.ndarray], atol: float = 1e-4) -> None:
    """Same maps, each with structure: a constant (or empty) map would make the equality trivial."""
    assert ours.keys() == plain.keys()
    for method, cam in ours.items():
        assert cam.dtype == np.float32 and cam.shape == plain[method].shape, method
        assert np.ptp(cam) > 0.5, f"{method}: the map is (nearly) constant, range {np.ptp(cam):.3f}"
        np.testing.assert_allclose(cam, plain[method], atol=atol, err_msg=method)
