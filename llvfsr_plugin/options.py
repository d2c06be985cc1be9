"""Early checks of an option YAML, before BasicSR starts (so a typo fails in one line, not a traceback)."""
import difflib

import yaml


class OptionFileError(ValueError):
    pass


def _suggest(name, choices):
    m = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" Did you mean '{m[0]}'?" if m else ''


def check_options(path):
    """Check `type`s against BasicSR's registries and prior names; raises OptionFileError."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    from llvfsr_plugin.data.prior_paired_dataset import check_prior_names
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise OptionFileError(f'{path}: not valid YAML: {e}') from None
    if not isinstance(opt, dict):
        raise OptionFileError(f'{path}: expected a mapping at top level')

    def need(reg, kind, where, t):
        if t is None:
            raise OptionFileError(f'{path}: {where}.type is missing')
        if t not in reg:
            raise OptionFileError(f"{path}: {where}.type '{t}' is not a registered BasicSR {kind}."
                                  f'{_suggest(t, reg.keys())}')

    # BasicSR registers archs/models lazily by importing basicsr.archs / basicsr.models
    import basicsr.archs  # noqa: F401
    import basicsr.losses  # noqa: F401
    import basicsr.metrics  # noqa: F401
    import basicsr.models  # noqa: F401
    mt = opt.get('model_type')
    if mt is not None and mt not in MODEL_REGISTRY:
        raise OptionFileError(f"{path}: model_type '{mt}' is not a registered BasicSR model."
                              f'{_suggest(mt, MODEL_REGISTRY.keys())}')
    for key, val in opt.items():
        if key.startswith('network_') and isinstance(val, dict):
            need(ARCH_REGISTRY, 'arch', key, val.get('type'))
            if val.get('type') == 'LLVFSRArch':
                check_prior_names(val.get('priors') or [], f'{path}: {key}.priors')
    for name, ds in (opt.get('datasets') or {}).items():
        need(DATASET_REGISTRY, 'dataset', f'datasets.{name}', ds.get('type'))
        check_prior_names(ds.get('priors') or [], f'{path}: datasets.{name}.priors')
    for name, loss in (opt.get('train') or {}).items():
        if name.endswith('_opt') and isinstance(loss, dict):
            need(LOSS_REGISTRY, 'loss', f'train.{name}', loss.get('type'))
    for name, m in ((opt.get('val') or {}).get('metrics') or {}).items():
        need(METRIC_REGISTRY, 'metric', f'val.metrics.{name}', m.get('type'))
    return opt
