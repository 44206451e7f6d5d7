#!/usr/bin/env bash
# The GPU measurements quoted in the README, in one script. Run from the repository root
# on a CUDA machine with the project importable:
#     bash benchmarks/gpu_measurements.sh OUT_DIR [tasks|comparison|fused|all]
# `tasks`: both default configurations trained for 27 epochs (seconds per epoch, validation
# and test metrics), the classifier's TF-IDF + logistic-regression baseline and 40 random
# configurations from its space. `comparison`: grid, random, tpe, hyperband and bohb on the
# classifier at full scale, one seed each, the same budget, 4 workers sharing the GPU.
# `fused`: fused training arrays (K = 1, 4, 16, 64) against one-at-a-time and 1/2/4/8
# packed processes, both tasks (benchmarks/fused_throughput.py). `check`: fused vs solo
# curves under bf16, with the solo-to-solo control (benchmarks/gpu_fused_check.py). `busy`: a live BOHB study on the small
# LM with 4 workers sharing the GPU, unfused and fused (benchmarks/gpu_busy.py).
set -euo pipefail
out=${1:?usage: gpu_measurements.sh OUT_DIR [tasks|comparison|fused|check|busy|all]}
what=${2:-all}
mkdir -p "$out"
if [[ $what == tasks || $what == all ]]; then
    python benchmarks/train_configs.py --task small_lm --device cuda --out "$out/small_lm.json"
    python benchmarks/train_configs.py --task text_classifier --device cuda --random 40 \
        --out "$out/text_classifier.json"
fi
if [[ $what == comparison || $what == all ]]; then
    python -m suite.cli run --task text_classifier --optimizer grid,random,tpe,hyperband,bohb \
        --budget 30x --seed 0 --include-default --workers 4 \
        --devices cuda:0,cuda:0,cuda:0,cuda:0 --out "$out/text_classifier-live"
fi
if [[ $what == fused || $what == all ]]; then
    python benchmarks/fused_throughput.py --device cuda --out "$out/fused_throughput.json"
fi
if [[ $what == check || $what == all ]]; then
    python benchmarks/gpu_fused_check.py --device cuda --control --out "$out/fused_check.json"
fi
if [[ $what == busy || $what == all ]]; then
    python benchmarks/gpu_busy.py --task small_lm --workers 4 --budget 200s \
        --out "$out/busy_small_lm.json"
    python benchmarks/gpu_busy.py --task small_lm --workers 4 --budget 200s --fuse auto \
        --out "$out/busy_small_lm_fused.json"
fi
