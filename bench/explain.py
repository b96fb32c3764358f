"""Explanation speed: prediction + Grad-CAM + Grad-CAM++ per model, against the floor.

For each model the floor is one forward plus one backward pass of that model on the same
image (``tf.GradientTape`` inside a ``tf.function``), measured in the same process. Reported
per model: load time, first-call (tracing) time paid at load, warm prediction time (a new image
each call), warm time of both maps after that image's outputs through the app's path
(``pipeline.attention``) and through plain tf-keras-vis as its README shows, each as a ratio to
the floor; then the display-only rerun
(opacity or colour map changed: overlays redrawn from cached maps; that the app calls no
model then is checked by tests/test_dashboard_app.py). Medians of several repeats on a second image onwards.
Without saved models, untrained models of ``--backbones`` are built (the speed does not
depend on the weights).

    python bench/explain.py [--models saved_models] [--backbones MobileNet DenseNet121]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402

from dashboard import overlay  # noqa: E402
from pipeline import artifacts  # noqa: E402
from pipeline.attention import AttentionModel  # noqa: E402
from pipeline.backbones import get_backbone  # noqa: E402
from pipeline.model import build_model, load_trained_model  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def models_to_measure(root: Path, backbones: list[str]):
    """(name, model, Grad-CAM layer, load seconds) for each saved model, then an untrained model
    of each of ``backbones`` that is not saved (speed does not depend on the weights)."""
    folders = artifacts.list_model_dirs(root)
    for folder in folders:
        start = time.perf_counter()
        model, _ = load_trained_model(folder)
        layer = artifacts.gradcam_layer(artifacts.read_config(folder), folder)
        yield folder.name, model, layer, time.perf_counter() - start
    for name in backbones:
        spec = get_backbone(name)
        if spec.name in {f.name for f in folders}:
            continue
        start = time.perf_counter()
        model = build_model(spec, 3, weights=None)
        yield f"{name} (untrained)", model, spec.gradcam_layer, time.perf_counter() - start


def measure(name: str, model, layer: str, load_seconds: float, repeats: int) -> float:
    size = int(model.input_shape[1])
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (size, size, 3)).astype("float32") for _ in range(2)]

    start = time.perf_counter()
    attention = AttentionModel(model, layer)
    attention.warm_up()
    first_call = time.perf_counter() - start

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = model(x, training=False)[:, 0]
        return tape.gradient(score, x)

    batch = tf.constant(images[1][None])
    forward_backward(batch)
    floor = median_seconds(lambda: forward_backward(batch).numpy(), repeats)
    alternate = itertools.cycle(images)
    predict = median_seconds(lambda: attention.probabilities(next(alternate)), repeats)  # a new image each call
    attention.probabilities(images[1])
    ours = median_seconds(lambda: attention.maps(images[1], 0), repeats)  # after that image's outputs, as the page

    plain = [cls(model, model_modifier=ReplaceToLinear(), clone=True) for cls in (Gradcam, GradcamPlusPlus)]
    score = CategoricalScore([0])
    run_plain = lambda: [v(score, images[1][None], penultimate_layer=layer, seek_penultimate_conv_layer=False)  # noqa: E731
                         for v in plain]
    run_plain()
    plain_time = median_seconds(run_plain, max(3, repeats // 2))

    maps = attention.maps(images[1], 0)
    view = np.full((overlay.DISPLAY_SIZE, overlay.DISPLAY_SIZE), 128, dtype=np.uint8)
    redraw = median_seconds(
        lambda: overlay.attention_panels(view, (maps["Grad-CAM"], maps["Grad-CAM++"]), 0.6, "Turbo"), repeats)

    print(f"{name}: load {load_seconds:.1f} s, first call (tracing, paid at load) {first_call:.1f} s")
    print(f"  floor (forward + backward) {floor * 1000:.0f} ms; prediction {predict * 1000:.0f} ms")
    print(f"  both maps, app path {ours * 1000:.0f} ms = {ours / floor:.2f}x floor; "
          f"plain tf-keras-vis {plain_time * 1000:.0f} ms = {plain_time / floor:.1f}x floor")
    print(f"  display-only rerun (overlays redrawn from cached maps) {redraw * 1000:.1f} ms")
    return ours / floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="saved_models")
    parser.add_argument("--backbones", nargs="+", default=["MobileNet", "DenseNet121", "ResNet50", "VGG16"])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    ratios = {name: measure(name, model, layer, seconds, args.repeats)
              for name, model, layer, seconds in models_to_measure(Path(args.models), args.backbones)}
    worst = max(ratios, key=ratios.get)
    print(f"ratio both maps / floor, worst model ({worst}): {ratios[worst]:.2f}x (target <= 2.2x)")


if __name__ == "__main__":
    main()
