#!/bin/bash
# lm3600.sh SEED: row llvfsr_tail_light_lm (landmark-net maps) at 3,600 in x16_fp3600 beside the seed's Model 1, LR-map
# and first-pass light tails (already there, not retrained), then the plain and averaged-weights reports
cd /work/exp/code3
export PYTHONPATH=/work/exp/code3 GLOG_minloglevel=2
for AVG in 1 10; do
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 --out /work/exp/x16_fp3600 \
  --scale 16 --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows model1 llvfsr_tail_light llvfsr_tail_light_sr llvfsr_tail_light_lm \
  --seeds $1 --report-metrics psnr face_psnr ssim id_dist --sensitivity --average-last $AVG
echo EXIT $?
done
