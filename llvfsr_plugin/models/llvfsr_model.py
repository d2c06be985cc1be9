"""LLVFSRModel: BasicSR's SRModel with the priors passed to the network (training, EMA, test, validation),
crash-safe checkpoints and exact resume (`llvfsr_plugin.training.CrashSafeCheckpoints`).

With `network_g.priors: []` (or any BasicSR arch that takes only `lq`) it behaves exactly like SRModel.
"""
from collections import OrderedDict

import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from llvfsr_plugin.archs.llvfsr_arch import arch_defaults
from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.metrics.face_metric import ID_STATS, probe_metrics
from llvfsr_plugin.priors.contract import batch_keys, canonical, check_store_meta
from llvfsr_plugin.training import CrashSafeCheckpoints
from llvfsr_plugin.utils.checkpoint import load_network_params


def network_priors(net_opt):
    """The priors a `network_g` option dict asks for (none for other archs)."""
    return canonical(net_opt.get('priors', arch_defaults()['priors'])) if net_opt.get('type') == 'LLVFSRArch' else ()


def check_network_against_data(net_opt, dataset_name, dataset_opt, prior_meta=None):
    """Network options vs a dataset's prior selection and the meta of its stores (the prior contract's
    `meta_checks`); raises OptionError naming the mismatch. Returns one-line notes (maps coarser than
    network_g.prior_size)."""
    ds_priors = list(dataset_opt.get('priors') or ())
    missing = [p for p in network_priors(net_opt) if p not in ds_priors]
    if missing:
        raise OptionError(f'network_g.priors asks for {missing}, but datasets.{dataset_name}.priors only '
                          f'provides {ds_priors}; add them (with prior_roots) or drop them from network_g')
    resolved = dict(arch_defaults(), **net_opt)
    notes = []
    for p, meta in (prior_meta or {}).items():
        if p in network_priors(net_opt):
            check_store_meta(p, meta, resolved, f'datasets.{dataset_name}')
            have, want = meta.get('prior_size'), resolved.get('prior_size')
            if have and want and have < want:
                notes.append(f'datasets.{dataset_name}: the {p} store holds {have}x{have} maps (an earlier default), '
                             f'network_g.prior_size is {want}: they are resized to each feature grid; remake the '
                             f'store with extract_priors.py --prior-size {want} --overwrite for sharper maps')
    return notes


# store meta fields that describe one dataset's content, not how its priors are made
DATA_FIELDS = ('content_sha256', 'lr_sha256', 'hr_sha256', 'count', 'keys', 'split', 'created')


def checkpoint_config(opt, store_metas):
    """What inference needs besides the weights, saved in every checkpoint (`utils.checkpoint.CONFIG_KEY`):
    the resolved network options, scale, LR face size, and per prior how it was made (the train stores' meta:
    extractor, its options, text encoder and dims) and its training dropout. `store_metas`: {dataset name:
    {prior: store meta}}."""
    net_opt = dict(opt['network_g'])
    if net_opt.get('type') == 'LLVFSRArch':
        net_opt = dict(arch_defaults(), **net_opt)
        net_opt['priors'] = list(net_opt['priors'])
    datasets = opt.get('datasets') or {}
    name = 'train' if 'train' in datasets else next(iter(datasets), None)
    ds, metas = datasets.get(name, {}), store_metas.get(name, {})
    drop = ds.get('prior_dropout') or 0
    priors = {p: dict({k: v for k, v in metas.get(p, {}).items() if k not in DATA_FIELDS},
                      dropout=float(drop.get(p, 0) if isinstance(drop, dict) else drop))
              for p in network_priors(net_opt)}
    return {'format': 1, 'network_g': net_opt, 'scale': opt.get('scale'), 'lr_size': PriorPairedDataset.lr_size(ds),
            'priors': priors, 'template': 'celebahq'}


@MODEL_REGISTRY.register()
class LLVFSRModel(CrashSafeCheckpoints, SRModel):

    def __init__(self, opt):
        net_opt = opt['network_g']
        self.prior_names = network_priors(net_opt)
        notes, metas = [], {}
        for name, ds_opt in opt.get('datasets', {}).items():
            metas[name] = PriorPairedDataset.store_meta(ds_opt)
            notes += check_network_against_data(net_opt, name, ds_opt, metas[name])
        for note in notes:
            get_root_logger().info(note)
        if opt.get('val'):
            probe_metrics(opt['val'].get('metrics'))
        self.checkpoint_config = checkpoint_config(opt, metas)
        super().__init__(opt)
        self.prior_keys = batch_keys(self.prior_names)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Strict loads go through the one checkpoint loader (a checkpoint of other network options fails with
        one message listing the differing parameters); non-strict ones are BasicSR's."""
        if not strict:
            return super().load_network(net, load_path, strict, param_key)
        get_root_logger().info(f'Loading {net.__class__.__name__} model from {load_path}, with param key: '
                               f'[{param_key}].')
        load_network_params(self.get_bare_model(net), load_path, param_key, strict=True)

    def feed_data(self, data):
        super().feed_data(data)
        self.priors = {k: data[k].to(self.device) for k in self.prior_keys if k in data}

    def _forward(self, net):
        return net(self.lq, self.priors) if self.prior_names else net(self.lq)

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output = self._forward(self.net_g)
        l_total = 0
        loss_dict = OrderedDict()
        if self.cri_pix:
            l_pix = self.cri_pix(self.output, self.gt)
            l_total += l_pix
            loss_dict['l_pix'] = l_pix
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            for name, v in (('l_percep', l_percep), ('l_style', l_style)):
                if v is not None:
                    l_total += v
                    loss_dict[name] = v
        l_total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        # the bare module: a DDP forward on rank 0 alone (validation) could wait on other ranks
        net = getattr(self, 'net_g_ema', None) or self.get_bare_model(self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = self._forward(net)
        if was_training:
            net.train()

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        n, missed = len(dataloader.dataset), ID_STATS['face_not_found']
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        logger = get_root_logger()
        logger.info(f'Validation {dataloader.dataset.opt["name"]}: every metric averaged over all {n} images.')
        missed = ID_STATS['face_not_found'] - missed
        if missed:
            logger.warning(f'identity distance: no face found in {missed} of {n} image pairs; those were embedded '
                           f'from the whole aligned crop (counted, not dropped)')
