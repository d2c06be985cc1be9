#!/bin/bash
# run16.sh SEEDS ROWS...: x16, 3,600 iterations in /work/exp/x16_coarse (code6), last-checkpoint report
SEEDS=$1; shift
cd /work/exp/code6
export PYTHONPATH=/work/exp/code6 GLOG_minloglevel=2
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 --out /work/exp/x16_coarse \
  --scale 16 --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows "$@" --seeds $SEEDS --report-metrics psnr face_psnr ssim id_dist --sensitivity
echo EXIT $?
