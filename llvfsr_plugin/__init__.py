"""llvfsr_plugin: LLV-FSR (arXiv 2411.09293) as a BasicSR plugin.

`import llvfsr_plugin` applies the repairs BasicSR 1.4.2 needs on current PyTorch (llvfsr_plugin/compat.py)
and registers LLVFSRArch, PriorPairedDataset, LLVFSRModel and this plugin's metrics in BasicSR's
registries, the way Real-ESRGAN's package does. It changes none of BasicSR's own models: the training
features (crash-safe checkpoints, exact resume, text collate) are LLVFSRModel's, and the `basicsr` CLI's
(llvfsr_plugin/training.py).
"""
from . import compat

compat.apply_pre_import()

try:
    import basicsr  # noqa: F401,E402
except ImportError as e:  # pragma: no cover - message for a broken install
    raise ImportError(f'llvfsr_plugin needs basicsr==1.4.2 ({e}). Run scripts/install.sh, or '
                      f"`pip install --no-build-isolation basicsr==1.4.2` after torch.") from e

compat.apply_post_import()

from .archs import *  # noqa: F401,F403,E402
from .data import *  # noqa: F401,F403,E402
from .metrics import *  # noqa: F401,F403,E402
from .models import *  # noqa: F401,F403,E402

__version__ = '0.1.0'

from .restorer import LLVFSRRestorer  # noqa: E402,F401  (the Python API: restorer.enhance(img))
