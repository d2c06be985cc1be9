#!/usr/bin/env python
"""Paired per-face differences between two methods of two reports (llvfsr-report's per_image.csv) over the
same faces: a row trained now against a committed run of another row, without retraining the committed one,
or the same row trained twice (a reproduction: every face's difference should be 0).

  python benchmarks/pair_reports.py \
      --a runs/x16/report/per_image.csv "LLV-FSR, LR priors, SFT prior tail" \
      --b benchmarks/results/quality_seeds_crn_2026-11-30/x16_one_zero_1800/report/per_image.csv \
          "LLV-FSR, LR priors, SFT SegA/DepA" [--metrics psnr face_psnr] [--json out.json]

Prints, per metric, A minus B: the mean over faces with its 95 % bootstrap interval, the largest per-face
difference in absolute value and the share of faces where A is higher. The faces are matched by key; both
reports must hold the same faces.
"""
import argparse
import json
import os
import sys

from llvfsr_plugin.cli import command
from llvfsr_plugin.errors import UserError
from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval, paired_bootstrap


def read_method(path, method):
    """{key: {metric: float}} of one method of a per_image.csv."""
    if not os.path.isfile(path):
        raise UserError(f'{path}: no such file (a report directory\'s per_image.csv, written by llvfsr-report)')
    scores = read_per_image(path)
    if method not in scores:
        raise UserError(f'{path}: no method {method!r}; it holds: ' + ', '.join(repr(m) for m in scores))
    return scores[method]


def pair(a, b, metrics=None):
    """A minus B per metric over the faces both hold.

    Args:
        a, b (dict): {key: {metric: score}} (read_method).
        metrics (list[str] | None): metrics to compare (default: every metric both have).
    Returns:
        dict: {metric: paired_bootstrap(...) plus max_abs (largest |A - B| of one face)}.
    """
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise UserError(f'the reports hold different faces: {len(only_a)} only in A (e.g. {only_a[:3]}), '
                        f'{len(only_b)} only in B (e.g. {only_b[:3]}); pair reports over the same val faces')
    keys = sorted(a)
    common = [m for m in next(iter(a.values())) if all(m in a[k] and m in b[k] for k in keys)]
    missing = [m for m in metrics or [] if m not in common]
    if missing:
        raise UserError(f'metrics {missing} are not in both reports; both have: {common}')
    out = {}
    for m in metrics or common:
        xa, xb = [a[k][m] for k in keys], [b[k][m] for k in keys]
        out[m] = dict(paired_bootstrap(xa, xb), max_abs=max(abs(p - q) for p, q in zip(xa, xb)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--a', nargs=2, required=True, metavar=('CSV', 'METHOD'))
    ap.add_argument('--b', nargs=2, required=True, metavar=('CSV', 'METHOD'))
    ap.add_argument('--metrics', nargs='+', default=None)
    ap.add_argument('--json', default=None, help='also write the result here')
    args = ap.parse_args(argv)
    result = pair(read_method(*args.a), read_method(*args.b), args.metrics)
    print(f'A = {args.a[1]} ({args.a[0]})\nB = {args.b[1]} ({args.b[0]})\n')
    print('| metric | A − B (95 % CI) | max per-face abs | faces where A > B | faces |\n|---|---|---|---|---|')
    for m, d in result.items():
        print(f"| {m} | {fmt_interval(d, 4)} | {d['max_abs']:.2g} | "
              f"{d['better']:.0%} | {d['n']} |")
    if args.json:
        json.dump({'a': args.a, 'b': args.b, 'a_minus_b': result}, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    sys.exit(command('pair_reports', main))
