"""`llvfsr-infer` on photos as users have them, with a checkpoint that `basicsr train` wrote: no YAML, no text;
the checkpoint's own configuration; refusals in one line; bf16 and export round trips."""
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from test_face_helper import composite

from llvfsr_plugin import LLVFSRRestorer
from llvfsr_plugin.export import example_inputs, export
from llvfsr_plugin.utils.checkpoint import CONFIG_KEY, load_model

from helpers import DEMO, PY, awaken, demo_keys, identity_checkpoint, run_cli, train_opt, write_yaml


@pytest.fixture(scope='module')
def trained(tiny_root, tmp_path_factory):
    """A checkpoint of `basicsr train` (3 iterations on the tiny root, all four priors, text dropout 0.5)."""
    d = tmp_path_factory.mktemp('trained')
    opt = train_opt(tiny_root, 'selfdesc', iters=3)
    opt['datasets']['train']['prior_dropout'] = {'caption': 0.5, 'description': 0.5}
    run_cli(['train', '-opt', write_yaml(d / 'train.yml', opt)], cwd=d)
    return str(d / 'experiments' / 'selfdesc' / 'models' / 'net_g_latest.pth'), d / 'train.yml'


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """The astronaut photo, a two-face composite and a photo without a face, as JPEG / PNG files."""
    from skimage import data
    d = tmp_path_factory.mktemp('photos')
    cv2.imwrite(str(d / 'astronaut.jpg'), data.astronaut()[..., ::-1])
    cv2.imwrite(str(d / 'two_faces.png'), composite()[0][..., ::-1])
    cv2.imwrite(str(d / 'no_face.png'), composite(placements=())[0][..., ::-1])
    return d


def infer(args, cwd, check=True):
    import subprocess
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.infer', *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, GLOG_minloglevel='2'))
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_checkpoint_describes_itself(trained):
    ckpt, _ = trained
    cfg = torch.load(ckpt, weights_only=True)[CONFIG_KEY]
    assert cfg['scale'] == 8 and cfg['lr_size'] == 16 and cfg['network_g']['type'] == 'LLVFSRArch'
    assert cfg['network_g']['body'] == 'lr' and cfg['network_g']['num_feat'] == 16  # resolved, defaults included
    assert cfg['priors']['mask']['extractor'] == 'facemesh' and cfg['priors']['mask']['prior_size'] == 128
    assert cfg['priors']['caption']['text_encoder'] == 'minilm' and cfg['priors']['caption']['text_dim'] == 384
    assert cfg['priors']['caption']['dropout'] == 0.5 and cfg['priors']['mask']['dropout'] == 0.0
    net, _ = load_model(ckpt)
    assert net.priors == ('caption', 'description', 'mask', 'depth')


def test_whole_photos_no_yaml_no_text(trained, photos, tmp_path):
    """A folder with the astronaut, a two-face composite and a photo with no face: every output written, the
    photo without a face upscaled unchanged and reported; the blank text noted."""
    ckpt, _ = trained
    out = tmp_path / 'out'
    r = infer(['-i', str(photos), '-o', str(out), '--model', ckpt], tmp_path)
    assert '3 face(s) restored from 3/3 image(s)' in r.stdout, r.stdout
    assert 'no face found in 1 image(s)' in r.stdout and 'no_face.png' in r.stdout
    assert 'without text it gets a blank caption (trained with caption dropout 0.5' in r.stdout + r.stderr
    assert cv2.imread(str(out / 'restored_imgs' / 'astronaut.png')).shape == (1024, 1024, 3)
    assert cv2.imread(str(out / 'restored_imgs' / 'two_faces.png')).shape == (800, 1280, 3)
    for name in ('two_faces_00', 'two_faces_01', 'astronaut_00'):
        assert cv2.imread(str(out / 'cropped_faces' / f'{name}.png')).shape == (16, 16, 3)
        assert cv2.imread(str(out / 'restored_faces' / f'{name}.png')).shape == (128, 128, 3)
    for name in ('astronaut', 'two_faces', 'no_face'):
        assert cv2.imread(str(out / 'cmp' / f'{name}.png')) is not None
    no_face = cv2.imread(str(photos / 'no_face.png'))
    assert np.array_equal(cv2.imread(str(out / 'restored_imgs' / 'no_face.png')),
                          cv2.resize(no_face, (1280, 800), interpolation=cv2.INTER_CUBIC))
    r = infer(['-i', str(photos / 'astronaut.jpg'), '-o', str(tmp_path / 'one'), '--model', ckpt, '--upscale', '1'],
              tmp_path)  # a single file
    assert cv2.imread(str(tmp_path / 'one' / 'restored_imgs' / 'astronaut.png')).shape == (512, 512, 3)
    r = infer(['-i', str(photos / '*.png'), '-o', str(tmp_path / 'glob'), '--model', ckpt], tmp_path)  # a pattern
    assert 'from 2/2 image(s)' in r.stdout


def test_other_extractors_refused_in_one_line(trained, photos, tmp_path):
    ckpt, _ = trained
    state = torch.load(ckpt, weights_only=True)
    state[CONFIG_KEY]['priors']['mask']['extractor'] = 'sam'
    state[CONFIG_KEY]['priors']['mask']['checkpoint'] = 'sha256-head:0123456789abcdef'
    torch.save(state, tmp_path / 'sam.pth')
    args = ['-i', str(photos / 'astronaut.jpg'), '-o', str(tmp_path / 'o'), '--model', str(tmp_path / 'sam.pth')]
    r = infer(args + ['--mask', 'facemesh'], tmp_path, check=False)
    assert r.returncode == 1 and r.stderr.strip().count('\n') == 0, r.stderr
    assert "trained on mask priors from extractor 'sam', but 'facemesh' was asked for" in r.stderr
    r = infer(args, tmp_path, check=False)  # the checkpoint's own extractor, whose weights are not here
    assert r.returncode == 1 and 'SAM' in r.stderr and 'checkpoint' in r.stderr
    r = infer(args + ['--mask', 'facemesh', '--allow-extractor-mismatch'], tmp_path)
    assert '1 face(s) restored' in r.stdout


def test_old_checkpoint_loads_with_a_note(trained, photos, tmp_path):
    ckpt, train_yml = trained
    state = torch.load(ckpt, weights_only=True)
    del state[CONFIG_KEY]
    torch.save(state, tmp_path / 'old.pth')
    args = ['-i', str(photos / 'astronaut.jpg'), '-o', str(tmp_path / 'o'), '--model', str(tmp_path / 'old.pth')]
    r = infer(args, tmp_path, check=False)
    assert r.returncode == 1 and 'carries no configuration' in r.stderr and '-opt' in r.stderr
    r = infer(args + ['-opt', str(train_yml), '--lr-size', '16'], tmp_path)
    assert 'note:' in r.stdout and 'carries no configuration' in r.stdout and '1 face(s) restored' in r.stdout


def test_bf16_matches_fp32_within_tolerance(trained):
    """--half on CPU runs the network in bf16: on 4 real val faces the output stays within 0.5 dB-level noise
    of fp32 (PSNR of bf16 against fp32 above 35 dB)."""
    ckpt, _ = trained
    faces = [cv2.imread(f'{DEMO}/images/{k}.jpg') for k in demo_keys('val', 4)]
    fp32 = LLVFSRRestorer(ckpt, device='cpu', log=lambda m: None)
    bf16 = LLVFSRRestorer(ckpt, device='cpu', half=True, log=lambda m: None)
    assert bf16.dtype == torch.bfloat16
    for f in faces:
        a = fp32.enhance(f, has_aligned=True)[2].astype(np.float64)
        b = bf16.enhance(f, has_aligned=True)[2].astype(np.float64)
        psnr = 10 * np.log10(255 ** 2 / max(((a - b) ** 2).mean(), 1e-10))
        assert psnr > 35, psnr


def test_export_round_trip(tmp_path):
    """TorchScript and ONNX (onnxruntime) against eager on other inputs than the trace (batch 1, 5 tokens),
    with every prior path awake (random weights where training starts at zero)."""
    pytest.importorskip('onnxruntime')
    net, _ = load_model(identity_checkpoint(tmp_path, lr_size=16, priors=('caption', 'description', 'mask', 'depth')))
    awaken(net, std=0.2)
    torch.nn.init.normal_(net.conv_last.weight, std=0.05)
    diffs = export(net, str(tmp_path / 'exp'), 16, log=lambda m: None)
    assert diffs['torchscript'] < 1e-5 and diffs['onnx'] < 1e-4, diffs
    ts = torch.jit.load(str(tmp_path / 'exp' / 'llvfsr.ts'))
    args = example_inputs(net, 16, batch=3, text_len=11)
    with torch.no_grad():
        want = net(args[0], dict(zip(['caption_tokens', 'caption_token_mask', 'description_tokens',
                                      'description_token_mask', 'mask', 'depth'], args[1:])))
        assert (ts(*args) - want).abs().max() < 1e-5 and want.std() > 0.01
    assert os.path.isfile(tmp_path / 'exp' / 'llvfsr.onnx') and os.path.isfile(tmp_path / 'exp' / 'inputs.json')
    shutil.rmtree(tmp_path / 'exp')


def test_released_x8_is_the_default(photos, tmp_path):
    """No --model: `llvfsr-infer` restores real photos with the released x8 model, and on the bundled val faces
    (CelebA-HQ val: never seen in its training) that model beats bicubic."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils.matlab_functions import imresize
    r = infer(['-i', str(photos), '-o', str(tmp_path / 'out')], tmp_path)
    assert '3 face(s) restored from 3/3 image(s)' in r.stdout, r.stdout
    assert ('LLVFSR_sft_lm_x8_celebahq256.pth (released: 4200 iterations on celebahq256 train: the 1,000'
            in r.stdout)
    restorer = LLVFSRRestorer(device='cpu')
    gains = []
    for k in demo_keys('val'):
        hr = cv2.imread(os.path.join(DEMO, 'images', f'{k}.jpg'))
        lr = restorer.to_lr(hr)
        _, sr, _ = restorer.enhance(lr, has_aligned=True, paste_back=False)
        bic = np.clip(imresize(lr.astype(np.float64) / 255.0, 8) * 255.0, 0, 255).round().astype(np.uint8)
        gains.append(calculate_psnr(sr[0], hr, 0, test_y_channel=True)
                     - calculate_psnr(bic, hr, 0, test_y_channel=True))
    assert np.mean(gains) > 0.5 and np.mean(np.array(gains) > 0) > 0.8, gains
