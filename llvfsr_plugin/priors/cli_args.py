"""Command-line selection of prior extractors, shared by datasets_prep/extract_priors.py and llvfsr-infer."""
import inspect
import sys

from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.priors.contract import PRIORS
from llvfsr_plugin.priors.extractors import EXTRACTORS, build_extractor

# offline default extractor and options per prior; a prior added by a plugin names its own with --<prior>
DEFAULTS = {'caption': ('file', {'policy': 'first'}), 'description': ('file', {'policy': 'all'}),
            'mask': ('facemesh', {}), 'depth': ('facemesh', {})}


PRIOR_SIZE = 128  # side of the stored mask / depth maps: the HR detail is drawn at 64-256 px


def with_prior_size(prior, name, opts, prior_size):
    """`opts` plus `prior_size` for a map extractor that takes one (and was not given one)."""
    cls = EXTRACTORS.get((prior, name))
    if PRIORS[prior].kind == 'map' and cls is not None and 'prior_size' in inspect.signature(cls.__init__).parameters:
        return dict({'prior_size': prior_size}, **opts)
    return opts


def default_extractors(text_dir, priors=tuple(DEFAULTS), prior_size=PRIOR_SIZE):
    """The offline default extractors (DEFAULTS), text read from `text_dir` (oracle), maps at `prior_size`."""
    out = {}
    for p in priors:
        name, opts = DEFAULTS[p]
        if PRIORS[p].kind == 'text':
            opts = dict(opts, text_dir=text_dir)
        out[p] = build_extractor(p, name, **with_prior_size(p, name, opts, prior_size))
    return out


def _default_name(prior):
    if prior in DEFAULTS:
        return DEFAULTS[prior][0]
    names = sorted(n for p, n in EXTRACTORS if p == prior)
    return names[0] if names else None


def parse_kv(pairs, flag):
    """['k=v', ...] -> {k: v} with ints, floats, true/false/none converted."""
    out = {}
    for p in pairs or []:
        if '=' not in p:
            sys.exit(f'{flag}: expected KEY=VALUE, got {p!r}')
        k, v = p.split('=', 1)
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        out[k] = {'true': True, 'false': False, 'none': None}.get(v, v) if isinstance(v, str) else v
    return out


def extractor_help():
    lines = ['extractors (choose with --<prior> NAME, options with --<prior>-opt KEY=VALUE ...):']
    for (prior, name), cls in sorted(EXTRACTORS.items()):
        src = getattr(cls, 'source_cls', None)
        docs = [cls.__dict__.get('__doc__'), src.__doc__ if src else None] + [c.__doc__ for c in cls.__mro__]
        doc = ' '.join(next((d for d in docs if d), '').split())
        lines.append(f'  {prior:12s} {name:15s} {doc.split(". ")[0].rstrip(".")}')
    lines.append('  text encoders (--text-encoder): minilm (offline, 384-d) | clip-hf (model=ID_OR_PATH) | '
                 'open_clip (model=ViT-B-32 pretrained=TAG_OR_PATH)')
    return '\n'.join(lines)


def add_extractor_args(ap):
    for p in PRIORS:
        ap.add_argument(f'--{p}', default=_default_name(p), help=f'{p} extractor (default: {_default_name(p)})')
        ap.add_argument(f'--{p}-opt', nargs='*', default=None, metavar='KEY=VALUE', help=f'{p} extractor options')
    ap.add_argument('--prior-size', type=int, default=PRIOR_SIZE,
                    help=f'side of the mask / depth maps (default {PRIOR_SIZE}; --<prior>-opt prior_size=N wins)')
    ap.add_argument('--text-encoder', default='minilm', help='minilm | clip-hf | open_clip (default: minilm)')
    ap.add_argument('--text-encoder-opt', nargs='*', default=None, metavar='KEY=VALUE')
    ap.add_argument('--text-dir', default=None, help='folder of <key>.txt for the `file` text extractors (oracle)')


def build_extractors(args, priors):
    """{prior: extractor} from parsed args; exits with one message if a model or input is unavailable."""
    enc_opts = parse_kv(args.text_encoder_opt, '--text-encoder-opt')
    extractors = {}
    try:
        for p in priors:
            name = getattr(args, p)
            opts = dict(DEFAULTS[p][1]) if p in DEFAULTS and name == DEFAULTS[p][0] else {}
            opts.update(parse_kv(getattr(args, f'{p}_opt'), f'--{p}-opt'))
            opts = with_prior_size(p, name, opts, getattr(args, 'prior_size', PRIOR_SIZE))
            if PRIORS[p].kind == 'text':
                opts.update(encoder=args.text_encoder, encoder_opts=enc_opts)
                if name == 'file':
                    if not args.text_dir:
                        sys.exit(f'--{p} file needs --text-dir (a folder of <key>.txt); or choose a model with '
                                 f'--{p} blip2 / openai / hf-vlm')
                    opts.setdefault('text_dir', args.text_dir)
            extractors[p] = build_extractor(p, name, **opts)
    except (ModelUnavailable, KeyError, ImportError) as e:
        sys.exit(f'[priors] {e}')
    return extractors
