#!/bin/bash
# run.sh SCALE SEEDS ROWS...: 3,600 iterations in /work/exp/x<SCALE>_coarse (code6 = b55d5d4), last-checkpoint report
# (this machine's paths; x8: run.sh 8 "0 1 2" llvfsr_tail_coarse_lm, and model1; x16: run.sh 16 0 llvfsr_tail_coarse_lm)
SCALE=$1; SEEDS=$2; shift 2
cd /work/exp/code6
export PYTHONPATH=/work/exp/code6 GLOG_minloglevel=2
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 \
  --out /work/exp/x${SCALE}_coarse --scale $SCALE --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows "$@" --seeds $SEEDS --report-metrics psnr face_psnr ssim id_dist --sensitivity
echo EXIT $?
