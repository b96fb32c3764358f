"""Training throughput per backbone, float32 against mixed precision, and whether the input keeps up.

For each backbone: the pipeline's model (fine-tune phase: the top of the backbone and the head
train; from scratch for backbones without pretrained weights) fed by the pipeline's own tf.data
input with augmentation, ``--steps`` timed steps after a warm-up (tracing, decode cache), in
float32 and in the policy ``train --mixed-precision`` picks: mixed float16 on a GPU, mixed
bfloat16 on a CPU with AVX512-BF16 or AMX (none on other CPUs). The input alone is timed the same way: where it
delivers fewer images per second than training consumes, the accelerator waits for data.
Prints images per second for each, then, last, the worst ratio of input to training speed
(>= 1.0: the input keeps the accelerator busy).

    python bench/train_throughput.py [--backbones MobileNet DenseNet121] [--steps 30] [--from-scratch]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline import data  # noqa: E402
from pipeline.augment import build_augmentation  # noqa: E402
from pipeline.backbones import BACKBONES, get_backbone  # noqa: E402
from pipeline.inputs import make_dataset  # noqa: E402
from pipeline.model import build_model, set_trainable  # noqa: E402
from pipeline.precision import compute_policy  # noqa: E402
from pipeline.train import hardware  # noqa: E402

BATCH = 32


def training_input(data_dir: str, size: int) -> tf.data.Dataset:
    dataset = data.scan_dataset(data_dir)
    paths, labels = [s.path for s in dataset.samples], dataset.labels.tolist()
    return make_dataset(paths, labels, size, BATCH, shuffle=True, augmentation=build_augmentation(seed=0)).repeat()


def input_images_per_second(batches, steps: int) -> float:
    iterator = iter(batches)
    for _ in range(steps):  # warm: fills the decode cache for the images it reaches
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * BATCH / (time.perf_counter() - start)


def training_images_per_second(name: str, batches, steps: int, precision: str, from_scratch: bool,
                               size: int) -> float:
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        spec = get_backbone(name)
        model = build_model(spec, 3, weights=None, image_size=size)
        set_trainable(model, spec, "fine_tune", from_scratch=from_scratch or not spec.pretrained)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                      jit_compile=bool(tf.config.list_physical_devices("GPU")))
        model.fit(batches, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)  # tracing and warm-up
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
        return steps * BATCH / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared/data/covid19-radiography-subset"))
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--from-scratch", action="store_true",
                        help="train every layer, as `train --weights none` does (default: the fine-tune phase)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input side in pixels, as `train --image-size` (default: each backbone's own)")
    args = parser.parse_args()
    mixed = compute_policy(True)
    precisions = ["float32"] if mixed == "float32" else ["float32", mixed]
    print(f"device: {hardware()['description']}; batch {BATCH}, {args.steps} timed steps")
    if mixed == "float32":
        print("mixed precision is not measured: no GPU and no bfloat16 instructions on this CPU")
    ratios = {}
    for name in args.backbones:
        size = args.image_size or get_backbone(name).input_size
        batches = training_input(args.data_dir, size)
        supply = input_images_per_second(batches, args.steps)
        speeds = {p: training_images_per_second(name, batches, args.steps, p, args.from_scratch, size)
                  for p in precisions}
        figures = ", ".join(f"{p} {v:.1f} images/s" for p, v in speeds.items())
        speedup = f"; {mixed} {speeds[mixed] / speeds['float32']:.2f}x float32" if mixed != "float32" else ""
        print(f"{name} at {size} px: training {figures}{speedup}; input alone {supply:.0f} images/s")
        ratios[name] = supply / max(speeds.values())
    worst = min(ratios, key=ratios.get)
    print(f"ratio input / fastest training, worst backbone ({worst}): {ratios[worst]:.2f}x (>= 1.0: input keeps up)")


if __name__ == "__main__":
    main()
