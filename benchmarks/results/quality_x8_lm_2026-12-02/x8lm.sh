#!/bin/bash
# [SEED=N] x8lm.sh ROWS...: x8, seed N (default 0), 3,600 iterations in /work/exp/x8_lm3600 (code4: a clone at 409daac for seeds 0-1, c4660de for seed 2), plain report then averaged
SEED=${SEED:-0}
cd /work/exp/code4
export PYTHONPATH=/work/exp/code4 GLOG_minloglevel=2
for AVG in 1 10; do
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 --out /work/exp/x8_lm3600 \
  --scale 8 --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows "$@" --seeds $SEED --report-metrics psnr face_psnr ssim id_dist --sensitivity --average-last $AVG
echo EXIT $?
done
