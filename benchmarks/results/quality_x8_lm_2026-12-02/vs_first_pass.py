"""x8 landmark-net row (this machine) against the committed x8 first-pass SFT row of 2026-11-30 (another machine),
seed 0, 3,600 iterations, each minus its own machine's Model 1 (the runs differ by machine: Model 1 here −0.008 dB
against the committed one): per face (lm − Model 1 here) − (first pass − Model 1 there), 95 % bootstrap."""
from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval, paired_bootstrap

OLD = '../quality_seeds_crn_2026-11-30'


here = read_per_image('x8_lm3600/report/per_image.csv')
fp = read_per_image(f'{OLD}/x8_first_pass_3600/report/per_image.csv')
m1_old = read_per_image(f'{OLD}/x8_one_zero_3600/report/per_image.csv')
lm = [v for k, v in here.items() if 'landmark-net' in k][0]
m1 = [v for k, v in here.items() if k.startswith('Model 1')][0]
fpr = [v for k, v in fp.items() if 'first-pass' in k][0]
m1o = [v for k, v in m1_old.items() if k.startswith('Model 1')][0]
keys = sorted(set(lm) & set(fpr) & set(m1o))
for met in ('psnr', 'face_psnr'):
    a = [lm[k][met] - m1[k][met] for k in keys]
    b = [fpr[k][met] - m1o[k][met] for k in keys]
    print(f'{met}: landmark-net tail gain {sum(a) / len(a):+.3f}, first-pass SFT gain {sum(b) / len(b):+.3f}, '
          f'difference {fmt_interval(paired_bootstrap(a, b))} over {len(keys)} faces')
