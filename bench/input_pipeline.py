"""Training input throughput: the pipeline's tf.data input against ImageDataGenerator.

Both apply the same augmentation (rotation 10 degrees, shift 0.1, zoom 0.1, nearest fill) at
224 px, batch 32, on the same folder. Our input is measured warm (its decode cache filled by
one pass, as from the second epoch on); ImageDataGenerator decodes from disk every epoch.
Prints images per second of each (median of repeats) and, last, the ratio.

    python bench/input_pipeline.py [--data-dir ../shared/data/covid19-radiography-subset]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402  (what Keras 2 exposed)

from pipeline import data  # noqa: E402
from pipeline.augment import build_augmentation  # noqa: E402
from pipeline.config import ROTATION_DEGREES, SHIFT_FRACTION, ZOOM_FRACTION  # noqa: E402
from pipeline.inputs import make_dataset  # noqa: E402

log = logging.getLogger("bench.input_pipeline")
SIZE, BATCH = 224, 32


def images_per_second(batches, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[2] / "shared/data/covid19-radiography-subset"
    parser.add_argument("--data-dir", default=str(default_data))
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    dataset = data.scan_dataset(args.data_dir)
    ours = make_dataset([s.path for s in dataset.samples], [s.label for s in dataset.samples], SIZE, BATCH,
                        shuffle=True, augmentation=build_augmentation()).repeat()
    ours_iter = iter(ours)
    images_per_second(ours_iter, len(dataset.samples) // BATCH + 1)  # one pass fills the decode cache

    generator = ImageDataGenerator(rotation_range=ROTATION_DEGREES, width_shift_range=SHIFT_FRACTION,
                                   height_shift_range=SHIFT_FRACTION, zoom_range=ZOOM_FRACTION, fill_mode="nearest")
    reference = generator.flow_from_directory(str(dataset.root), target_size=(SIZE, SIZE), batch_size=BATCH,
                                              classes=dataset.classes, class_mode="sparse", seed=0)
    images_per_second(reference, 2)

    ours_rates, reference_rates = [], []
    for repeat in range(args.repeats):
        ours_rates.append(images_per_second(ours_iter, args.batches))
        reference_rates.append(images_per_second(reference, args.batches))
        log.info("repeat %d: tf.data %.0f img/s, ImageDataGenerator %.0f img/s", repeat + 1, ours_rates[-1],
                 reference_rates[-1])
    ours_median, reference_median = statistics.median(ours_rates), statistics.median(reference_rates)
    print(f"tf.data input (augmented, warm): {ours_median:.0f} images/s")
    print(f"ImageDataGenerator.flow_from_directory (augmented): {reference_median:.0f} images/s")
    print(f"ratio tf.data / ImageDataGenerator: {ours_median / reference_median:.2f}x")


if __name__ == "__main__":
    main()
