"""The `basicsr` command: BasicSR's own train/test pipelines with this plugin (and any other) registered.

    basicsr train -opt options/train_x8.yml [--auto_resume] [--debug] [--force_yml k=v ...]
    basicsr test  -opt options/test_x8.yml
    torchrun --nproc_per_node=2 -m llvfsr_plugin train -opt ... --launcher pytorch
"""
import argparse
import contextlib
import importlib
import os
import sys
from importlib.metadata import entry_points

import yaml

import llvfsr_plugin  # noqa: F401  (first: applies the compat repairs before anything imports basicsr)
from basicsr.test import test_pipeline
from basicsr.train import train_pipeline
from llvfsr_plugin import training
from llvfsr_plugin.compat import normalize_argv
from llvfsr_plugin.errors import UserError
from llvfsr_plugin.options import check_options

HELP = """usage: basicsr {train,test} -opt OPTION.yml [BasicSR options]

Runs BasicSR's own train_pipeline / test_pipeline (basicsr==1.4.2) with llvfsr_plugin and every package
that declares itself a BasicSR plugin (entry-point group `basicsr.plugins`) imported first, so their
archs, datasets, models, metrics and priors can be named in the YAML. Adds crash-safe checkpoints, exact
resume and the text collate to every model it trains (llvfsr_plugin.training).

subcommands:
  train      basicsr.train.train_pipeline   -> ./experiments/<name>/, ./tb_logger/<name>/
  test       basicsr.test.test_pipeline     -> ./results/<name>/

BasicSR options (forwarded unchanged):
  -opt PATH              option YAML (required)
  --launcher {none,pytorch,slurm}
                         `pytorch` under torchrun (CPU: gloo; CUDA: nccl, device = LOCAL_RANK)
  --auto_resume          resume from the newest ./experiments/<name>/training_states/*.state
  --debug                debug mode (name prefixed with debug_, frequent logging/checkpoints)
  --force_yml K=V ...    override YAML values, e.g. train:total_iter=100 datasets:train:batch_size_per_gpu=4
  --local_rank N         accepted for torch.distributed.launch (also as --local-rank)

Outputs land under the current directory (the BasicSR "root path").

distributed:
  torchrun --nproc_per_node=N -m llvfsr_plugin train -opt X.yml --launcher pytorch
  (multi-node: add --nnodes/--node_rank/--rdzv_endpoint as usual for torchrun)

environment:
  LLVFSR_DIST_TIMEOUT    seconds before a collective with a dead rank fails (default 1800)
  LLVFSR_TRACEBACK=1     show the traceback of a user error (as --debug does)
"""


def load_plugins():
    """Import every module registered under the `basicsr.plugins` entry-point group (llvfsr_plugin is)."""
    loaded = ['llvfsr_plugin']
    for ep in entry_points(group='basicsr.plugins'):
        if ep.value == 'llvfsr_plugin':
            continue
        try:
            importlib.import_module(ep.value)
            loaded.append(ep.value)
        except Exception as e:  # a broken third-party plugin must not take the CLI down
            print(f'[basicsr] warning: plugin {ep.name} ({ep.value}) failed to import: {e}', file=sys.stderr)
    return loaded


def _check_opt(argv):
    if '-opt' not in argv:
        sys.exit('basicsr: error: -opt OPTION.yml is required (see `basicsr --help`)')
    i = argv.index('-opt')
    if i + 1 >= len(argv):
        sys.exit('basicsr: error: -opt needs a path')
    path = argv[i + 1]
    if not os.path.isfile(path):
        sys.exit(f'basicsr: error: option file not found: {path} (cwd: {os.getcwd()})')


def main(argv=None):
    return command('basicsr', _main, argv)


def _main(argv):
    if not argv or argv[0] in ('-h', '--help', 'help'):
        print(HELP)
        return 0
    cmd, rest = argv[0], normalize_argv(argv[1:])
    if cmd not in ('train', 'test'):
        sys.exit(f'basicsr: error: unknown subcommand {cmd!r}; use `basicsr train` or `basicsr test`')
    if any(a in ('-h', '--help') for a in rest):
        print(HELP)
        return 0
    _check_opt(rest)
    load_plugins()
    training.install()
    check_options(rest[rest.index('-opt') + 1])
    sys.argv = [f'basicsr {cmd}'] + rest  # BasicSR's parse_options reads sys.argv
    rank = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0)))  # rank 0 alone writes the experiment
    with (training.experiment_lock(os.getcwd(), experiment_name(rest)) if cmd == 'train' and rank == 0
          else contextlib.nullcontext()):
        (train_pipeline if cmd == 'train' else test_pipeline)(os.getcwd())
    return 0


def experiment_name(argv):
    """The experiment name BasicSR's parse_options gives a run: the option file's `name`, after `--force_yml
    name=...`, with `debug_` in front under --debug (basicsr/utils/options.py).

    Args:
        argv (list[str]): the train command's arguments (after `train`), holding `-opt PATH`.
    """
    with open(argv[argv.index('-opt') + 1], encoding='utf-8') as f:
        name = str((yaml.safe_load(f) or {}).get('name'))
    if '--force_yml' in argv:
        for entry in argv[argv.index('--force_yml') + 1:]:
            if entry.startswith('--'):
                break
            key, _, value = entry.partition('=')
            name = value.strip() if key.strip() == 'name' else name
    return name if '--debug' not in argv or name.startswith('debug') else 'debug_' + name


def command(prog, func, argv=None):
    """Run a console command's `func(argv)` in the one user-error style: a UserError, a file-system error
    that names its file, or Ctrl-C ends it with one line `<prog>: error: ...` (exit 1; 130 for Ctrl-C).
    The traceback only with --debug or LLVFSR_TRACEBACK=1; any other exception is a bug and keeps it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv or os.environ.get('LLVFSR_TRACEBACK') == '1'
    try:
        return func(argv) or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f'\n{prog}: interrupted; finished work is kept: rerun the same command to continue', file=sys.stderr)
        return 130
    except (UserError, OSError) as e:
        user = isinstance(e, UserError)
        if debug or not (user or e.filename):  # an OSError that names no file is a bug, not the user's to fix
            raise
        print(f"{prog}: error: {e if user else f'{e.strerror}: {e.filename}'}", file=sys.stderr)
        return 1


def int_at_least(low):
    """argparse type: a whole number >= `low` (argparse prints the error in its one-line style)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a whole number >= {low}, got {text!r}') from None
        if v < low:
            raise argparse.ArgumentTypeError(f'must be >= {low}, got {v}')
        return v
    parse.__name__ = f'integer >= {low}'
    return parse


if __name__ == '__main__':
    sys.exit(main())
