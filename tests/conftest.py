"""Fixtures: a tiny real-face dataset (bundled CelebA-HQ faces -> LMDBs + offline priors). Tests under
tests/e2e/ (subprocess pipelines, SIGKILL, torchrun) are marked `slow`. Helpers live in `helpers.py`."""
import os

import pytest

import llvfsr_plugin  # noqa: F401  (compat repairs + registries before any basicsr import)
from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs
from llvfsr_plugin.priors.cli_args import default_extractors

from helpers import DEMO, demo_keys

os.environ.setdefault('GLOG_minloglevel', '2')
E2E = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'e2e')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(E2E):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope='session')
def demo_dir():
    return DEMO


@pytest.fixture(scope='session')
def tiny_root(tmp_path_factory):
    """8 train + 4 val real faces, HR 128, x8 (16 px LR), all four offline priors. Built once (~10 s)."""
    root = str(tmp_path_factory.mktemp('tiny') / 'data')
    files = {s: [(k, os.path.join(DEMO, 'images', f'{k}.jpg')) for k in demo_keys(s, n)]
             for s, n in (('train', 8), ('val', 4))}
    make_image_lmdbs(files, root, scales=[8], hr_size=128, workers=2)
    text_dir = os.path.join(DEMO, 'text')
    extract_priors(root, ['train', 'val'], [8], default_extractors(text_dir), text_dir=text_dir)
    return root
