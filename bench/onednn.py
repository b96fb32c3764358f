"""Training speed with TensorFlow's oneDNN kernels off and on, measured in one run.

TensorFlow turns oneDNN on by default only on some x86 CPUs; ``python -m pipeline train`` turns it
on unless ``TF_ENABLE_ONEDNN_OPTS`` is already set. The variable is read when TensorFlow loads, so
each setting runs ``bench/train_throughput.py`` in a fresh process, for each backbone, off then on
then off again (the two "off" runs show the machine's drift). Prints images per second and, last,
the on / off ratio per backbone.

    python bench/onednn.py [--backbones DenseNet121 ResNet50] [--steps 4] [--from-scratch]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.config import ONEDNN_VARIABLE  # noqa: E402

SPEED = re.compile(r"training float32 (\d+(?:\.\d+)?) images/s")


def images_per_second(backbone: str, onednn: bool, steps: int, from_scratch: bool) -> float:
    """float32 training images per second of ``backbone`` in a fresh process with oneDNN on or off."""
    command = [sys.executable, str(REPO / "bench/train_throughput.py"), "--backbones", backbone, "--steps", str(steps)]
    if from_scratch:
        command.append("--from-scratch")
    env = {**os.environ, ONEDNN_VARIABLE: "1" if onednn else "0"}
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found = SPEED.search(run.stdout)
    if found is None:
        raise RuntimeError(f"no training speed in the output of {' '.join(command)}:\n{run.stdout}\n{run.stderr}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["DenseNet121", "ResNet50", "VGG16"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--from-scratch", action="store_true",
                        help="train every layer, as `train --weights none` does (default: the fine-tune phase)")
    args = parser.parse_args()
    ratios = {}
    for name in args.backbones:
        off = images_per_second(name, False, args.steps, args.from_scratch)
        on = images_per_second(name, True, args.steps, args.from_scratch)
        off_again = images_per_second(name, False, args.steps, args.from_scratch)
        print(f"{name}: oneDNN off {off:.1f}, on {on:.1f}, off again {off_again:.1f} images/s", flush=True)
        ratios[name] = on / ((off + off_again) / 2)
    print("oneDNN on / off, float32 training: " + ", ".join(f"{n} {r:.2f}x" for n, r in ratios.items()))


if __name__ == "__main__":
    main()
