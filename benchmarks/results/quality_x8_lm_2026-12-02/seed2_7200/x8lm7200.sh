#!/bin/bash
# x8lm7200.sh ROW: continue seed 2's ROW in /work/exp/x8_lm3600 from 3,600 to 7,200 iterations (code5 = c4660de), plain report
cd /work/exp/code5
export PYTHONPATH=/work/exp/code5 GLOG_minloglevel=2
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 --out /work/exp/x8_lm3600 \
  --scale 8 --train 1000 --val 100 --iters 7200 --gt-size 128 --threads 1 \
  --rows "$@" --seeds 2 --report-metrics psnr face_psnr ssim id_dist
echo EXIT $?
