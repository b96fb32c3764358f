"""Peak memory of one process that loads every model and draws both maps for each, as the app does.

Uses the app's own path (``dashboard.explain.Explainer``: load, warm up, predict, Grad-CAM and
Grad-CAM++). Every saved model, then an untrained model of each pretrained backbone that is
not saved (memory does not depend on the weights), so the figure always covers the four.
Prints the resident memory after importing TensorFlow, after each model, the peak, and last
the peak as a ratio to the 1.5 GB budget.

    python bench/memory.py [--models saved_models]
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from dashboard.explain import Explainer  # noqa: E402
from pipeline import artifacts  # noqa: E402
from pipeline.attention import AttentionModel  # noqa: E402
from pipeline.backbones import BACKBONES, get_backbone  # noqa: E402
from pipeline.model import build_model  # noqa: E402

BUDGET_BYTES = 1.5e9
PRETRAINED = [name for name, spec in BACKBONES.items() if spec.pretrained]


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(REPO / "saved_models"))
    args = parser.parse_args()
    print(f"after imports: {rss_bytes() / 1e6:.0f} MB")
    rng = np.random.default_rng(0)
    kept = []
    saved = [f.name for f in artifacts.list_model_dirs(args.models)]
    for name in saved + [n for n in PRETRAINED if n not in saved]:
        if name in saved:
            explainer = Explainer(Path(args.models) / name)
            attention, size = explainer.attention, explainer.input_size
        else:
            spec = get_backbone(name)
            attention = AttentionModel(build_model(spec, 3, weights=None), spec.gradcam_layer)
            attention.warm_up()
            size, name = spec.input_size, f"{name} (untrained)"
        image = rng.uniform(0, 255, (size, size, 3)).astype("float32")
        attention.probabilities(image)
        attention.maps(image, 0)
        kept.append(attention)
        print(f"after {name}: {rss_bytes() / 1e6:.0f} MB (peak {peak_bytes() / 1e6:.0f} MB)")
    print(f"peak resident memory with {len(kept)} models and their maps: {peak_bytes() / 1e6:.0f} MB")
    print(f"ratio peak / 1.5 GB budget: {peak_bytes() / BUDGET_BYTES:.2f} (target <= 1.0)")


if __name__ == "__main__":
    main()
