#!/usr/bin/env python
"""Paired per-face differences between two methods of two reports (llvfsr-report's per_image.csv) over the
same faces: a row trained now against a committed run of another row, without retraining the committed one,
or the same row trained twice (a reproduction: every face's difference should be 0).

  python benchmarks/pair_reports.py \
      --a runs/x16/report/per_image.csv "LLV-FSR, LR priors, SFT prior tail" \
      --b benchmarks/results/quality_seeds_crn_2026-11-30/x16_one_zero_1800/report/per_image.csv \
          "LLV-FSR, LR priors, SFT SegA/DepA" [--metrics psnr face_psnr] [--json out.json] \
      [--by-fallback runs/x16/data/val/priors_x16/mask.lmdb]

Prints, per metric, A minus B: the mean over faces with its 95 % bootstrap interval, the largest per-face
difference in absolute value and the share of faces where A is higher. The faces are matched by key; both
reports must hold the same faces. With --by-fallback (a prior store of the val faces), the same again over the
faces whose prior the extractor found and over those where it found no face and stored the mean prior: how
much of a gain depends on the extractor reading the face (FaceMesh misses ~40 % of x16's 16 px faces). The
two groups are not alike otherwise (the missed faces are the harder ones: turned, occluded, small), so the
split says where the gain lies, not what a better extractor would give.
"""
import argparse
import json
import os
import sys

from llvfsr_plugin.cli import command
from llvfsr_plugin.errors import UserError
from llvfsr_plugin.priors.store import PriorStore
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


def pair_line(label, a, b, metrics):
    """One line '  <label>: <metric> <A - B with interval>, ...' of `pair` (the results scripts print these)."""
    return f'  {label}: ' + ', '.join(f'{m} {fmt_interval(d)}' for m, d in pair(a, b, metrics).items())


def interpolate(lo, hi, w, metrics):
    """Each face's scores a fraction w of the way from `lo` to `hi` (two runs of one row, fewer and more iterations):
    a point estimate of that row trained in between, assuming steady progress between the two."""
    return {k: {m: (1 - w) * lo[k][m] + w * hi[k][m] for m in metrics} for k in lo}


def fallback_flags(store):
    """{key: True if the record is the extractor's fallback (no face found: the mean prior), else False} of a
    prior store."""
    st = PriorStore(store)
    return {k: bool(st.get(k)[1].get('fallback')) for k in st.keys()}


def pair_by_fallback(a, b, flags, metrics=None):
    """`pair` over the faces whose prior the extractor found ('found') and over those where it stored the
    fallback ('fallback').

    Args:
        a, b (dict): {key: {metric: score}} over the same faces (read_method).
        flags (dict): {key: fallback?} of the prior store of these faces (fallback_flags); it must hold every face.
        metrics (list[str] | None): as in `pair`.
    Returns:
        dict: {'found': pair(...), 'fallback': pair(...)}; a group without faces is left out.
    """
    missing = sorted(set(a) - set(flags))
    if missing:
        raise UserError(f'the prior store holds no record of {len(missing)} of the report\'s faces (e.g. '
                        f'{missing[:3]}); pass the prior store of the faces the report scored')
    groups = {'found': [k for k in a if not flags[k]], 'fallback': [k for k in a if flags[k]]}
    return {g: pair({k: a[k] for k in keys}, {k: b[k] for k in keys}, metrics)
            for g, keys in groups.items() if keys}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--a', nargs=2, required=True, metavar=('CSV', 'METHOD'))
    ap.add_argument('--b', nargs=2, required=True, metavar=('CSV', 'METHOD'))
    ap.add_argument('--metrics', nargs='+', default=None)
    ap.add_argument('--json', default=None, help='also write the result here')
    ap.add_argument('--by-fallback', default=None, metavar='PRIOR_STORE',
                    help='also pair over the faces whose prior this store found and over those where it fell back')
    args = ap.parse_args(argv)
    a, b = read_method(*args.a), read_method(*args.b)
    result = pair(a, b, args.metrics)
    print(f'A = {args.a[1]} ({args.a[0]})\nB = {args.b[1]} ({args.b[0]})\n')
    groups = {'all faces': result}
    if args.by_fallback:
        split = pair_by_fallback(a, b, fallback_flags(args.by_fallback), args.metrics)
        groups.update({f'{g} ({args.by_fallback})': d for g, d in split.items()})
    for title, res in groups.items():
        if len(groups) > 1:
            print(f'{title}:\n')
        print('| metric | A − B (95 % CI) | max per-face abs | faces where A > B | faces |\n|---|---|---|---|---|')
        for m, d in res.items():
            print(f"| {m} | {fmt_interval(d, 4)} | {d['max_abs']:.2g} | "
                  f"{d['better']:.0%} | {d['n']} |")
        print()
    if args.json:
        out = {'a': args.a, 'b': args.b, 'a_minus_b': result}
        if args.by_fallback:
            out['by_fallback'] = dict(store=args.by_fallback, **split)
        json.dump(out, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    sys.exit(command('pair_reports', main))
