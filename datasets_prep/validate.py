#!/usr/bin/env python
"""Check a prepared dataset: every key in every LMDB (HR, LR per scale, each prior store), decodable, with
consistent shapes and meta. Exit code 1 and a list of problems if anything is off.

  python datasets_prep/validate.py --root datasets/demo
"""
import argparse
import sys

from llvfsr_plugin.cli import command, int_at_least, load_plugins
from llvfsr_plugin.prep.pipeline import validate


def main(argv=None):
    return command('validate.py', _main, argv)


def _main(argv):
    load_plugins()  # priors that other packages add (entry-point group `basicsr.plugins`)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', required=True)
    ap.add_argument('--splits', nargs='+', default=None)
    ap.add_argument('--scales', type=int_at_least(1), nargs='+', default=None)
    args = ap.parse_args(argv)
    return 1 if validate(args.root, args.splits, args.scales) else 0


if __name__ == '__main__':
    sys.exit(main())
