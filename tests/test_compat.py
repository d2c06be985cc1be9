"""Plugin foundation: registries, compat repairs, and that importing the plugin changes no other model."""
import importlib
import subprocess
import sys

import torchvision.transforms.functional_tensor as ft  # the removed module, aliased by the compat repair

import basicsr.data.degradations  # noqa: F401  (imports it at module level: works)
import llvfsr_plugin
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from llvfsr_plugin import compat
from llvfsr_plugin.archs.llvfsr_arch import LLVFSRArch


def test_registries_filled_and_reimport_harmless():
    assert 'LLVFSRArch' in ARCH_REGISTRY
    assert 'PriorPairedDataset' in DATASET_REGISTRY
    assert 'LLVFSRModel' in MODEL_REGISTRY
    assert 'calculate_psnr' in METRIC_REGISTRY  # BasicSR's own stay
    importlib.reload(llvfsr_plugin)  # applying the patches again must be a no-op, not a duplicate registration
    assert ARCH_REGISTRY.get('LLVFSRArch') is LLVFSRArch


def test_compat_patches_applied():
    assert callable(ft.rgb_to_grayscale)
    assert compat.applied() == ['dist', 'functional_tensor', 'resume']
    assert compat.normalize_argv(['--local-rank=1', '-opt', 'x']) == ['--local_rank=1', '-opt', 'x']



def test_import_changes_no_other_model_and_the_cli_adds_the_features():
    """`import llvfsr_plugin` repairs BasicSR but leaves BaseModel's checkpointing to BasicSR (a user who only
    wants the network gets no surprises); `training.install()`, which the `basicsr` CLI calls, adds them."""
    code = '''
import llvfsr_plugin
from basicsr.models.base_model import BaseModel
from llvfsr_plugin import training
names = ("save_network", "save_training_state", "resume_training")
def origin(f):
    return getattr(f, "__wrapped__", f).__code__.co_filename.replace("\\\\", "/")
before = {n: origin(getattr(BaseModel, n)) for n in names}
assert all(v.endswith("basicsr/models/base_model.py") for v in before.values()), before
assert training.installed() == []
training.install()
after = {n: origin(getattr(BaseModel, n)) for n in names}
assert all(v.endswith("llvfsr_plugin/training.py") for v in after.values()), after
print("ok")
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == 'ok', r.stderr[-3000:]
