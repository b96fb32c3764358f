#!/usr/bin/env bash
# Generalization experiments: MobileNet from ImageNet weights, one training budget for every
# recipe, fixed seeds; and, for networks that train from random weights, the learning-rate recipe
# (scratch-*: the small CNN at 112 px, 8 epochs each, plateau cuts against warm-up and cosine; vgg16-*: VGG16,
# which has no BatchNormalization, at 112 px with warm-up and cosine, at 1e-3 and 1e-4). Each run is trained
# (scoring its validation and test splits) and audited by
# the pipeline's own CLI; its config.json and metrics.json are kept under docs/experiments/<run>/
# and docs/EXPERIMENTS.md is generated from them. It compares the recipes on the validation split
# only: the test split and the lung-boxes audit hold targets, so they choose nothing (the audit's
# figures stay in each run's metrics.json, to look at the maps).
#
#   docs/experiments.sh DATA_DIR WEIGHTS LUNG_BOXES RUN...      RUN = <recipe>-<seed>, e.g. robust-42
#   docs/experiments.sh --report                                 only regenerate docs/EXPERIMENTS.md
set -euo pipefail
cd "$(dirname "$0")/.."

budget=(--backbone MobileNet --epochs 2 --fine-tune-epochs 6 --fine-tune-learning-rate 1e-4)
scratch_budget=(--backbone SmallCNN --weights none --image-size 112 --augmentation affine --label-smoothing 0
                --learning-rate 1e-3)
vgg16_budget=(--backbone VGG16 --weights none --image-size 112 --augmentation affine --label-smoothing 0
              --epochs 8 --fine-tune-epochs 0 --schedule cosine --warmup-epochs 1 --patience 8)
declare -A recipes=(
  [baseline]="--augmentation affine --label-smoothing 0 --learning-rate 1e-3"
  [robust]="--augmentation robust --label-smoothing 0 --learning-rate 1e-3"
  [smoothing]="--augmentation affine --label-smoothing 0.1 --learning-rate 3e-4"
  [robust-smoothing]="--augmentation robust --label-smoothing 0.1 --learning-rate 3e-4"
  [lungfocus]="--augmentation affine --label-smoothing 0 --learning-rate 1e-3 --lung-focus saved_models/lungs"
  [robust-lungfocus]="--augmentation robust --label-smoothing 0 --learning-rate 1e-3 --lung-focus saved_models/lungs"
  [equalize]="--augmentation affine --label-smoothing 0 --learning-rate 1e-3 --intensity equalize"
  [chainbalance]="--augmentation affine --label-smoothing 0 --learning-rate 1e-3 --balance chain"
  [scratch-plateau]="--epochs 6 --fine-tune-epochs 2 --fine-tune-learning-rate 1e-4 --schedule plateau --patience 4"
  [scratch-cosine]="--epochs 8 --fine-tune-epochs 0 --schedule cosine --warmup-epochs 1 --patience 8"
  [vgg16-cosine]="--learning-rate 1e-3"
  [vgg16-cosine-slow]="--learning-rate 1e-4"
)

if [[ ${1:-} != --report ]]; then
  if (( $# < 4 )); then
    echo "usage: docs/experiments.sh DATA_DIR WEIGHTS LUNG_BOXES RUN... (RUN: <recipe>-<seed>; recipes: ${!recipes[*]})" >&2
    echo "   or: docs/experiments.sh --report" >&2
    exit 2
  fi
  data=$1 weights=$2 boxes=$3
  shift 3
  for run in "$@"; do
    recipe=${run%-*} seed=${run##*-}
    [[ -n ${recipes[$recipe]:-} ]] || { echo "unknown recipe '$recipe'; valid: ${!recipes[*]}" >&2; exit 2; }
    if [[ $recipe == scratch-* ]]; then
      backbone=SmallCNN options=("${scratch_budget[@]}")
    elif [[ $recipe == vgg16-* ]]; then
      backbone=VGG16 options=("${vgg16_budget[@]}")
    else
      backbone=MobileNet options=("${budget[@]}" --weights "$weights")
    fi
    # shellcheck disable=SC2086  # the recipe's options are meant to split into words
    python -m pipeline train "${options[@]}" ${recipes[$recipe]} --seed "$seed" --data-dir "$data" \
      --out "runs/$run" --checkpoint-dir ".checkpoints/$run"
    python -m pipeline audit --model "runs/$run/$backbone" --data-dir "$boxes" --faithfulness-images 0 \
      --lungs saved_models/lungs
    mkdir -p "docs/experiments/$run"
    cp "runs/$run/$backbone/config.json" "runs/$run/$backbone/metrics.json" "docs/experiments/$run/"
  done
fi
python -m pipeline report --experiments docs/experiments --out docs/EXPERIMENTS.md
