"""LLVFSRModel: BasicSR's SRModel with the priors passed to the network (training, EMA, test, validation).

With `network_g.priors: []` (or any BasicSR arch that takes only `lq`) it behaves exactly like SRModel.
"""
from collections import OrderedDict

import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from llvfsr_plugin.data.prior_paired_dataset import prior_batch_keys


class PriorOptionError(ValueError):
    pass


def check_network_against_priors(net_opt, dataset_opt, dataset_name, prior_meta=None):
    """Network options vs a dataset's prior selection and store meta; raises with the mismatch named."""
    net_priors = list(net_opt.get('priors', ())) if net_opt.get('type') == 'LLVFSRArch' else []
    ds_priors = list(dataset_opt.get('priors') or ())
    missing = [p for p in net_priors if p not in ds_priors]
    if missing:
        raise PriorOptionError(f'network_g.priors asks for {missing}, but datasets.{dataset_name}.priors only '
                               f'provides {ds_priors}; add them (with prior_roots) or drop them from network_g')
    for p, meta in (prior_meta or {}).items():
        if p not in net_priors:
            continue
        if p in ('caption', 'description'):
            dim, want = meta.get('text_dim'), net_opt.get('text_dim', 384)
            if dim is not None and dim != want:
                raise PriorOptionError(f"prior {p!r} of datasets.{dataset_name} was embedded by "
                                       f"{meta.get('text_encoder')} with dim {dim}, but network_g.text_dim is "
                                       f"{want}; set network_g.text_dim: {dim} or re-embed the text")
        if p == 'mask':
            ncls = meta.get('num_classes')
            want = net_opt.get('num_classes')
            if ncls is not None and want is not None and ncls != want:
                raise PriorOptionError(f'mask prior of datasets.{dataset_name} has {ncls} classes but '
                                       f'network_g.num_classes is {want}')


@MODEL_REGISTRY.register()
class LLVFSRModel(SRModel):

    def __init__(self, opt):
        net_opt = opt['network_g']
        self.prior_names = tuple(net_opt.get('priors', ())) if net_opt.get('type') == 'LLVFSRArch' else ()
        for name, ds_opt in opt.get('datasets', {}).items():
            check_network_against_priors(net_opt, ds_opt, name, _store_meta(ds_opt))
        if opt.get('val'):
            from llvfsr_plugin.metrics.face_metric import probe_metrics
            probe_metrics(opt['val'].get('metrics'))
        super().__init__(opt)
        self.prior_keys = prior_batch_keys(self.prior_names)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's load_network, but a checkpoint of a network with other options fails with one message
        listing the differing parameters (instead of a state_dict traceback)."""
        if strict:
            from llvfsr_plugin.utils.checkpoint import checkpoint_mismatch
            state = torch.load(load_path, map_location='cpu', weights_only=True)
            key = param_key if param_key in state else 'params'
            sd = {k[7:] if k.startswith('module.') else k: v for k, v in state[key].items()}
            problems = checkpoint_mismatch(self.get_bare_model(net).state_dict(), sd)
            if problems:
                raise PriorOptionError(f'{load_path} was trained with other network options than network_g:\n  '
                                       + '\n  '.join(problems) + '\n  Use the option file it was trained with, '
                                       'or set path.strict_load_g: false to load what matches.')
        super().load_network(net, load_path, strict, param_key)

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
        from llvfsr_plugin.metrics.face_metric import ID_STATS
        n, missed = len(dataloader.dataset), ID_STATS['face_not_found']
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        logger = get_root_logger()
        logger.info(f'Validation {dataloader.dataset.opt["name"]}: every metric averaged over all {n} images.')
        missed = ID_STATS['face_not_found'] - missed
        if missed:
            logger.warning(f'identity distance: no face found in {missed} of {n} image pairs; those were embedded '
                           f'from the whole aligned crop (counted, not dropped)')


def _store_meta(ds_opt):
    from llvfsr_plugin.priors.store import PriorStore
    out = {}
    for p, path in (ds_opt.get('prior_roots') or {}).items():
        try:
            out[p] = PriorStore(path).meta
        except (FileNotFoundError, ValueError):
            pass  # the dataset reports a missing/broken store itself, with the dataset's name
    return out
