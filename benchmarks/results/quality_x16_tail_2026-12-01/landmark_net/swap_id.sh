#!/bin/bash
# the 7,200 first-pass rows (averaged) tested with landmark-net maps: SR images, then PSNR / face PSNR / identity vs Model 1
cd /work/exp/x16_7200
export PYTHONPATH=/work/main GLOG_minloglevel=2 OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
for s in "$@"; do
  if [ $s = 0 ]; then n=q_llvfsr_tail_light_sr_avg10; m=q_model1_avg10; else n=q_llvfsr_tail_light_sr_s${s}_avg10; m=q_model1_s${s}_avg10; fi
  sed "s|^name: .*|name: ${n}_lm|" ${n}_lm_test.yml > ${n}_lmswap_test.yml
  $PY -m llvfsr_plugin test -opt ${n}_lmswap_test.yml > /dev/null
  echo TEST $s $?
  $PY -m llvfsr_plugin.report --hr data/val/hr.lmdb --lr data/val/lr_x16.lmdb --scale 16 \
    --method "Model 1 (no priors)=results/$m/visualization/q_val" \
    --method "first-pass weights, landmark-net maps=results/${n}_lm/visualization/q_val" \
    --reference "Model 1 (no priors)" --metrics psnr face_psnr id_dist --out /work/exp/lmnet/report_swap_s$s
  echo REPORT $s $?
done
