#!/bin/bash
# run.sh SEEDS ROWS...: x16, 3,600 iterations in /work/exp/x16_site (this machine's paths; code10 = a copy of the
# repo at 037c3d5; rows llvfsr_tailonly_lm and llvfsr_sft_lm at seeds 0, 1, 2 and model1 at seed 2; one process per
# run, two at a time)
SEEDS=$1; shift 1
cd /work/exp/code10
export PYTHONPATH=/work/exp/code10 GLOG_minloglevel=2
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 \
  --out /work/exp/x16_site --scale 16 --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows "$@" --seeds $SEEDS --report-metrics psnr face_psnr ssim id_dist --sensitivity
echo EXIT $?
