"""Prior extractors: the paper's models on tiny random configs (real code paths), the describer against a
local chat-completions server, the offline defaults on real faces."""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.prep.images import degrade, read_rgb
from llvfsr_plugin.prep.layout import prior_path
from llvfsr_plugin.prep.pipeline import extract_priors, validate
from llvfsr_plugin.priors.contract import MASK_LABELS
from llvfsr_plugin.priors.extractors import Sample, build_extractor
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner
from llvfsr_plugin.priors.extractors.text_extractors import ChatDescriber, build_text_encoder, text_embedding_similarity
from llvfsr_plugin.priors.store import PriorStore

import tiny_models
from helpers import DEMO, ROOT, demo_keys, images_only


class ChatServer:
    """A chat-completions endpoint on 127.0.0.1: fails the first requests with the given codes, then
    answers with a description that names the request number."""

    def __init__(self, fail_codes=()):
        self.fail_codes, self.requests = list(fail_codes), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                outer.requests.append((self.path, self.headers.get('Authorization'), body))
                if outer.fail_codes:
                    code = outer.fail_codes.pop(0)
                    self.send_response(code)
                    if code == 429:
                        self.send_header('Retry-After', '0')
                    self.end_headers()
                    self.wfile.write(b'{"error": "try later"}')
                    return
                text = f'a young woman with long hair, smiling (reply {len(outer.requests)})'
                data = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': text}}]}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_describer_retries_and_caches(tmp_path):
    srv = ChatServer(fail_codes=[429, 500])
    try:
        lrs = [np.full((16, 16, 3), v, np.uint8) for v in (10, 200)]
        d = ChatDescriber(model='vlm-x', base_url=srv.url, api_key='k123', cache_dir=str(tmp_path / 'cache'),
                          backoff=0.01)
        texts = d(lrs)
        assert len(srv.requests) == 4 and d.calls == 4  # 429, 500, then one success per image
        path, auth, body = srv.requests[-1]
        assert path == '/v1/chat/completions' and auth == 'Bearer k123' and body['model'] == 'vlm-x'
        content = body['messages'][0]['content']
        assert content[0]['type'] == 'text' and 'useful visible features' in content[0]['text']
        assert content[1]['image_url']['url'].startswith('data:image/png;base64,')
        assert texts[0].startswith('a young woman') and texts[0] != texts[1]
        d2 = ChatDescriber(model='vlm-x', base_url=srv.url, cache_dir=str(tmp_path / 'cache'))
        assert d2(lrs) == texts and d2.calls == 0 and len(srv.requests) == 4  # nothing paid twice
        d3 = ChatDescriber(model='other-model', base_url=srv.url, cache_dir=str(tmp_path / 'cache'))
        d3(lrs[:1])
        assert d3.calls == 1  # the cache key includes the model
    finally:
        srv.close()


def test_describer_gives_up_with_clear_error(tmp_path):
    srv = ChatServer(fail_codes=[400])
    try:
        d = ChatDescriber(model='m', base_url=srv.url, cache_dir=str(tmp_path), backoff=0.01)
        with pytest.raises(RuntimeError, match='HTTP 400'):
            d([np.zeros((16, 16, 3), np.uint8)])
    finally:
        srv.close()


def test_paper_models_end_to_end_on_tiny_configs(tiny_root, tmp_path):
    """BLIP-2 captions + transformers CLIP, chat describer + open_clip, SAM masks, Depth Anything depth:
    the same pipeline as the offline defaults, writing records that validate."""
    root = images_only(tiny_root, tmp_path)
    blip, blip_proc = tiny_models.tiny_blip2()
    clip, clip_tok = tiny_models.tiny_clip_hf()
    oclip, oclip_tok = tiny_models.tiny_open_clip()
    depth, depth_proc = tiny_models.tiny_depth_anything()
    srv = ChatServer()
    try:
        ex = {
            'caption': build_extractor('caption', 'blip2', model_obj=blip, processor=blip_proc, max_new_tokens=4,
                                       encoder='clip-hf', encoder_opts=dict(model='tiny-clip', model_obj=clip,
                                                                            tokenizer=clip_tok)),
            'description': build_extractor('description', 'openai', model='vlm', base_url=srv.url,
                                           cache_dir=str(tmp_path / 'cache'), encoder='open_clip',
                                           encoder_opts=dict(model='tiny-oc', model_obj=oclip, tokenizer=oclip_tok)),
            'mask': build_extractor('mask', 'sam', model_obj=tiny_models.tiny_sam(), points_per_side=4, prior_size=32,
                                    upsample_to=64, pred_iou_thresh=-10, stability_score_thresh=-10),
            'depth': build_extractor('depth', 'depth-anything', model='tiny-da', model_obj=depth, processor=depth_proc,
                                     prior_size=32),
        }
        extract_priors(root, ['val'], [8], ex, batch_size=3)
    finally:
        srv.close()
    keys = demo_keys('val', 4)
    cap = PriorStore(prior_path(root, 'val', 8, 'caption'))
    assert cap.meta['text_encoder'] == 'clip-hf' and cap.meta['text_dim'] == 32 and cap.meta['oracle'] is False
    arrays, rmeta = cap.get(keys[0])
    assert arrays['tokens'].shape[1] == 32 and arrays['pooled'].shape == (32,) and isinstance(rmeta['text'], str)
    des = PriorStore(prior_path(root, 'val', 8, 'description'))
    arrays, rmeta = des.get(keys[1])
    assert des.meta['text_encoder'] == 'open_clip' and arrays['tokens'].shape[1] == 32
    assert rmeta['text'].startswith('a young woman') and arrays['token_mask'].sum() == arrays['tokens'].shape[0]
    m = PriorStore(prior_path(root, 'val', 8, 'mask'))
    labels = m.get(keys[0])[0]['mask']
    assert labels.shape == (32, 32) and labels.max() > 0 and m.meta['labels'] == 'area-rank'
    d = PriorStore(prior_path(root, 'val', 8, 'depth')).get(keys[0])[0]['depth']
    assert d.shape == (32, 32) and 0 <= d.min() and d.max() == 1
    assert validate(root, splits=['val'], verbose=False) == []


def test_missing_weights_fail_fast_with_where_to_put_them(monkeypatch):
    monkeypatch.delenv('LLVFSR_ALLOW_DOWNLOAD', raising=False)
    t = time.time()
    with pytest.raises(ModelUnavailable) as e:
        build_extractor('depth', 'depth-anything', model='LiheYoung/depth-anything-small-hf')
    msg = str(e.value)
    assert 'not found in the Hugging Face cache' in msg and 'huggingface-cli download' in msg
    with pytest.raises(ModelUnavailable, match='SAM: checkpoint'):
        build_extractor('mask', 'sam', checkpoint='/nope/sam_vit_h.pth')
    with pytest.raises(ModelUnavailable, match='open_clip'):
        build_text_encoder('open_clip', model='ViT-B-32', pretrained='openai')
    assert time.time() - t < 60  # no long hang on a closed network


def test_extract_priors_help_documents_every_extractor():
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'datasets_prep', 'extract_priors.py'), '--help'],
                       capture_output=True, text=True)
    assert r.returncode == 0
    for prior, name in [('caption', 'blip2'), ('caption', 'file'), ('description', 'openai'),
                        ('description', 'hf-vlm'), ('mask', 'facemesh'), ('mask', 'sam'), ('depth', 'facemesh'),
                        ('depth', 'depth-anything'), ('mask', 'mean-face'), ('depth', 'mean-face')]:
        assert any(line.split()[:2] == [prior, name] for line in r.stdout.splitlines()), (prior, name)
    assert 'open_clip' in r.stdout and '--text-dir' in r.stdout


def _hr_landmarks(key):
    hr = read_rgb(os.path.join(DEMO, 'images', f'{key}.jpg'), allow_resize_to=256)
    return hr, FaceMeshRunner.get().landmarks('hr-' + key, hr)


def _at(a, xy, size):
    """The map around a landmark: a window of ~3/64 of the face side (3x3 at 64, 5x5 at 128)."""
    x, y, r = int(xy[0] * size), int(xy[1] * size), max(1, size // 64)
    return a[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]


def test_facemesh_mask_and_depth_on_real_faces():
    """Priors from the 32x32 LR face land where FaceMesh puts eyes, lips and the nose on the 256x256 HR face."""
    mask_ex, depth_ex = build_extractor('mask', 'facemesh'), build_extractor('depth', 'facemesh')
    eye_labels = {MASK_LABELS.index(n) for n in ('left_eye', 'right_eye', 'iris')}
    lip_labels = {MASK_LABELS.index(n) for n in ('lips', 'mouth')}
    checked = 0
    for key in demo_keys('val', 8):
        hr, lm = _hr_landmarks(key)
        if lm is None:
            continue
        s = Sample(key, degrade(hr, 8))
        (m, mm), = mask_ex.extract([s])
        (d, dm), = depth_ex.extract([s])
        if mm['fallback']:
            continue
        labels, depth = m['mask'], d['depth'].astype(np.float32)
        n = labels.shape[0]
        assert n == depth.shape[0] == 128  # the default prior_size
        for iris in (468, 473):  # iris centres of the refined mesh
            assert eye_labels & set(np.unique(_at(labels, lm[iris], n))), key
        assert lip_labels & set(np.unique(_at(labels, lm[13], n))), key  # upper-lip centre
        nose = _at(depth, lm[1], n).mean()
        cheeks = [_at(depth, lm[i], n).mean() for i in (234, 454)]  # face sides at cheek height
        assert nose > max(cheeks) + 0.2, (key, nose, cheeks)
        checked += 1
    assert checked >= 5


def test_facemesh_fallback_is_flagged():
    (m, meta), = build_extractor('mask', 'facemesh').extract([Sample('blank', np.full((16, 16, 3), 128, np.uint8))])
    assert meta['fallback'] is True and m['mask'].shape == (128, 128) and m['mask'].max() > 0  # the mean face


def test_mean_face_maps_are_the_facemesh_fallback_for_every_face():
    """'mean-face' hands every face (read or not by FaceMesh) the template FaceMesh falls back to."""
    blank = Sample('blank', np.full((16, 16, 3), 128, np.uint8))
    faces = [Sample(k, degrade(read_rgb(os.path.join(DEMO, 'images', f'{k}.jpg'), allow_resize_to=256), 4))
             for k in demo_keys('val', 2)]
    for prior in ('mask', 'depth'):
        facemesh, mean = build_extractor(prior, 'facemesh', prior_size=64), build_extractor(prior, 'mean-face',
                                                                                            prior_size=64)
        (template, meta), = facemesh.extract([blank])
        assert meta['fallback'] and template[prior].shape == (64, 64)
        (own, meta), = facemesh.extract(faces[:1])
        assert not meta['fallback'] and not np.array_equal(own[prior], template[prior])  # a face-specific map
        for s, (arrays, meta) in zip(faces + [blank], mean.extract(faces + [blank])):
            assert meta == {'source': s.key, 'fallback': True}
            np.testing.assert_array_equal(arrays[prior], template[prior])
        assert mean.meta()['mean_prior'] == facemesh.meta()['fallback_prior'] and mean.meta()['prior_size'] == 64


def test_minilm_embeddings_real_captions():
    enc = build_text_encoder('minilm')
    a = open(os.path.join(DEMO, 'text', demo_keys('train', 1)[0] + '.txt')).readline().strip()
    b = 'A man with a beard, eyeglasses and a hat, not smiling.'
    assert enc.dim == 384
    (ta, ma, pa), (ta2, _, pa2), (tb, _, pb) = enc.encode([a, a, b])
    np.testing.assert_allclose(pa, pa2, atol=1e-5)
    np.testing.assert_allclose(ta, ta2, atol=1e-5)
    assert text_embedding_similarity(enc, a, a) > 0.999
    assert text_embedding_similarity(enc, a, b) < 0.9
    assert ma.all() and ta.shape[0] == ma.shape[0]

