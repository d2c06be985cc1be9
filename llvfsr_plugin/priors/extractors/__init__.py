"""Prior extractors: every module `*_extractors.py` of this package registers its extractors on import.

    from llvfsr_plugin.priors.extractors import build_extractor
    ex = build_extractor('mask', 'facemesh', prior_size=64)

`base` holds the interface (`PriorExtractor`, `Sample`, `register`) and loading helpers; the modules import
only `base` and the contract, never this package, so there is no import cycle.
"""
from llvfsr_plugin._autoimport import import_modules

from .base import EXTRACTORS, PriorExtractor, Sample, register

__all__ = ['EXTRACTORS', 'PriorExtractor', 'Sample', 'build_extractor', 'register']

_modules = import_modules(__name__, __file__, '_extractors')


def build_extractor(prior, name, **opts):
    """The extractor registered as (`prior`, `name`), built with `opts`."""
    if (prior, name) not in EXTRACTORS:
        known = sorted(n for p, n in EXTRACTORS if p == prior)
        raise KeyError(f'no {prior!r} extractor named {name!r}; known: {known}')
    return EXTRACTORS[(prior, name)](**opts)
