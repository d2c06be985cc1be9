#!/bin/bash
# run.sh CODE SEEDS ROWS...: x8, 3,600 iterations in /work/exp/x8_tailonly (this machine's paths; CODE = a copy of
# the repo: code7 = bf4cd56 for model1 seed 2, code8 = d47b81d for llvfsr_tailonly_coarse_lm and
# llvfsr_tail_coarse_lm seed 2, code9 = e0e8fe1 for llvfsr_sft_lm; one process per run, two at a time)
CODE=$1; SEEDS=$2; shift 2
cd /work/exp/$CODE
export PYTHONPATH=/work/exp/$CODE GLOG_minloglevel=2
/work/main/.venv/bin/python benchmarks/quality_experiment.py --data-root /work/shared/data/celebahq256 \
  --out /work/exp/x8_tailonly --scale 8 --train 1000 --val 100 --iters 3600 --gt-size 128 --threads 1 \
  --rows "$@" --seeds $SEEDS --report-metrics psnr face_psnr ssim id_dist --sensitivity
echo EXIT $?
