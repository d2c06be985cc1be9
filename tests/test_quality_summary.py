"""benchmarks/quality_experiment.py's summary over seeds: what varies with the training seed."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))

from quality_experiment import (  # noqa: E402
    ROWS,
    collect_timing,
    over_seeds,
    over_seeds_md,
    plot_seeds,
    prep_extractor_priors,
    prep_first_pass_priors,
    prep_shuffled_priors,
    prior_use,
    prior_use_md,
    rescale_loss,
    run_name,
    summarize,
)


def diff(mean, lo, hi):
    return {'mean': mean, 'lo': lo, 'hi': hi}


def test_over_seeds_mean_range_and_interval_counts(tmp_path):
    result = {'0': {'llvfsr_sft': {'model1': {'psnr': diff(-0.04, -0.05, -0.03)}}},
              '1': {'llvfsr_sft': {'model1': {'psnr': diff(0.30, 0.27, 0.33)}},
                    'llvfsr_hg': {'hg_model1': {'psnr': diff(0.6, 0.5, 0.7)}}},  # one seed only: left out
              '2': {'llvfsr_sft': {'model1': {'psnr': diff(0.01, -0.01, 0.03), 'face_psnr': diff(0.1, 0.0, 0.2)}}}}
    over = over_seeds(result)
    assert set(over) == {'llvfsr_sft'}
    psnr = over['llvfsr_sft']['model1']['psnr']
    assert psnr['seeds'] == 3 and psnr['mean'] == pytest.approx(0.09)
    assert (psnr['min'], psnr['max'], psnr['above_0'], psnr['below_0']) == (-0.04, 0.30, 1, 1)
    assert 'face_psnr' not in over['llvfsr_sft']['model1']  # measured in one seed
    # t interval over the three seeds: sd 0.1836, t(0.975, 2) = 4.303, half-width 0.456
    assert psnr['sd'] == pytest.approx(0.18358, abs=1e-5)
    assert (psnr['seed_lo'], psnr['seed_hi']) == (pytest.approx(0.09 - 0.45603, abs=1e-4),
                                                  pytest.approx(0.09 + 0.45603, abs=1e-4))
    assert '| llvfsr_sft | model1 | 3 | +0.090 (-0.366, +0.546) [-0.040, +0.300] 1/1 | n/a |' in over_seeds_md(over)
    plot_seeds(result, over, str(tmp_path / 'seeds.png'))
    assert (tmp_path / 'seeds.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_prior_use_reads_each_rows_sensitivity_per_seed(tmp_path):
    own_minus = {'blank priors': diff(0.009, 0.004, 0.014), "another face's priors": diff(0.002, -0.001, 0.005),
                 'blank mask only': diff(0.008, 0.003, 0.013)}
    (tmp_path / 'q_llvfsr_sft_s1_sensitivity.json').write_text(json.dumps({'own_minus': own_minus}))
    use = prior_use(str(tmp_path), [0, 1])
    assert use == {'1': {'llvfsr_sft': {c: own_minus[c] for c in ('blank priors', "another face's priors")}}}
    assert '| 1 | llvfsr_sft | +0.0090 [+0.0040, +0.0140] | +0.0020 [-0.0010, +0.0050] |' in prior_use_md(use)


def test_collect_timing_keeps_runs_finished_by_other_processes(tmp_path):
    # two processes shared this out directory; the one summarizing last had loaded timing.json before the other
    # finished: the runs' own records put both seeds back
    for row, seed in (('model1', 0), ('llvfsr_sft', 2)):
        record = {'row': row, 'seed': seed, 'iters': 600}
        (tmp_path / f'{run_name(row, seed)}_timing.json').write_text(json.dumps(record))
    timing = collect_timing(str(tmp_path), {'prep_minutes': 0.1, 'model1_s1': {'row': 'model1', 'seed': 1}})
    assert set(timing) == {'prep_minutes', 'model1_s0', 'model1_s1', 'llvfsr_sft_s2'}
    assert timing['llvfsr_sft_s2']['iters'] == 600


def test_train_and_test_sums_wall_and_cpu_minutes_over_continuations(tmp_path, monkeypatch):
    # a fake trainer that burns CPU in a child process: the record's CPU minutes come from the child, and a run
    # continued from a finished shorter one carries the earlier minutes on
    import subprocess

    import quality_experiment
    calls = []
    real_run = subprocess.run

    def fake_run(cmd, **kw):
        calls.append(cmd[3:])
        if cmd[3] == 'train':
            burn = 'import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass'
            real_run([sys.executable, '-c', burn], check=True)

    monkeypatch.setattr(quality_experiment.subprocess, 'run', fake_run)
    fields = dict(label='Model 1', row='model1', iters=200, batch=8, seed=0, threads=1)
    first = quality_experiment.train_and_test(str(tmp_path), 'q_model1', {}, {}, **fields)
    assert calls == [['train', '-opt', 'q_model1_train.yml'], ['test', '-opt', 'q_model1_test.yml']]
    assert first['cpu_minutes'] >= 0.25 / 60 and first['train_minutes'] >= first['cpu_minutes'] * 0.5
    assert 'continued_from' not in first and first['iters'] == 200
    (tmp_path / 'experiments' / 'q_model1').mkdir(parents=True)  # its checkpoints: the next call resumes them
    longer = quality_experiment.train_and_test(str(tmp_path), 'q_model1', first, {}, **dict(fields, iters=400))
    assert calls[2] == ['train', '-opt', 'q_model1_train.yml', '--auto_resume']
    assert longer['continued_from'] == 200 and longer['iters'] == 400
    assert longer['cpu_minutes'] >= first['cpu_minutes'] + 0.25 / 60
    assert longer['train_minutes'] > first['train_minutes']
    # a record from before CPU minutes were measured: its continuation says it does not know them
    old = {k: v for k, v in first.items() if k != 'cpu_minutes'}
    assert quality_experiment.train_and_test(str(tmp_path), 'q_model1', old, {}, **dict(fields, iters=600))[
        'cpu_minutes'] is None


def test_summary_pairs_a_row_with_the_row_it_varies(tmp_path):
    # llvfsr_sft_sr (maps from a first SR pass) is compared with Model 1 and with llvfsr_sft (maps from the
    # bicubic LR face), face by face
    import csv
    (tmp_path / 'report').mkdir()
    with open(tmp_path / 'report' / 'per_image.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['key', 'method', 'psnr'])
        for k in range(20):
            for row, psnr in (('model1', 25.0), ('llvfsr_sft', 25.1), ('llvfsr_sft_sr', 25.3)):
                w.writerow([k, ROWS[row][0], psnr + 0.01 * (k % 3)])
    summarize(str(tmp_path), [0])
    result = json.load(open(tmp_path / 'summary.json'))['0']
    assert set(result['llvfsr_sft_sr']) == {'model1', 'llvfsr_sft'}
    assert result['llvfsr_sft_sr']['llvfsr_sft']['psnr']['mean'] == pytest.approx(0.2)
    assert result['llvfsr_sft_sr']['model1']['psnr']['mean'] == pytest.approx(0.3)
    assert '| 0 | llvfsr_sft_sr | llvfsr_sft | +0.200 [+0.200, +0.200] |' in (tmp_path / 'summary.md').read_text()


def test_first_pass_prior_root_draws_maps_through_the_seeds_model1(tmp_path, tiny_root):
    from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path
    from llvfsr_plugin.priors.store import PriorStore, Store

    from helpers import identity_checkpoint
    out = str(tmp_path)
    with pytest.raises(SystemExit, match='Model 1 of seed 1, which is not trained .* put model1 before it'):
        prep_first_pass_priors(tiny_root, out, 8, 64, 1)
    models = tmp_path / 'experiments' / 'q_model1_s1' / 'models'
    models.mkdir(parents=True)
    os.replace(identity_checkpoint(models, lr_size=16, priors=()), models / 'net_g_latest.pth')
    (tmp_path / 'q_model1_s1_timing.json').write_text(json.dumps({'row': 'model1', 'seed': 1, 'iters': 4}))
    froot = prep_first_pass_priors(tiny_root, out, 8, 64, 1)
    assert froot == os.path.join(out, 'data_firstpass_model1_s1_4')
    for split in ('train', 'val'):
        assert os.path.realpath(lr_path(froot, split, 8)) == os.path.realpath(lr_path(tiny_root, split, 8))
        assert os.path.realpath(hr_path(froot, split)) == os.path.realpath(hr_path(tiny_root, split))
        for prior in ('mask', 'depth'):
            store = PriorStore(prior_path(froot, split, 8, prior))
            assert store.meta['first_pass'] == os.path.join(froot, 'first_pass.pth')
            assert store.meta['prior_size'] == 64
            assert sorted(store.keys()) == sorted(Store(lr_path(tiny_root, split, 8)).keys())


def test_mean_face_prior_root_holds_one_template_for_every_face(tmp_path, tiny_root):
    import numpy as np

    from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path
    from llvfsr_plugin.priors.store import PriorStore, Store
    xroot = prep_extractor_priors(tiny_root, str(tmp_path), 8, 64, 'mean-face')
    assert xroot == os.path.join(str(tmp_path), 'data_mean-face')
    assert ROWS['llvfsr_sft_mean'][4]['maps'] == 'mean-face'
    for split in ('train', 'val'):
        assert os.path.realpath(lr_path(xroot, split, 8)) == os.path.realpath(lr_path(tiny_root, split, 8))
        assert os.path.realpath(hr_path(xroot, split)) == os.path.realpath(hr_path(tiny_root, split))
        keys = sorted(Store(lr_path(tiny_root, split, 8)).keys())
        for prior in ('mask', 'depth'):
            store = PriorStore(prior_path(xroot, split, 8, prior))
            assert store.meta['extractor'] == 'mean-face' and store.meta['prior_size'] == 64
            assert sorted(store.keys()) == keys and len(keys) > 1
            maps = [store.get(k)[0][prior] for k in keys]
            assert all(np.array_equal(m, maps[0]) for m in maps)


def test_shuffled_prior_root_gives_every_face_another_faces_maps(tmp_path, tiny_root):
    """Row llvfsr_sft_shuffled: each face's mask and depth records are those of one other face of its split (the
    same one for both), every face's maps are used once, and the root is a valid dataset."""
    from llvfsr_plugin.prep.layout import prior_path
    from llvfsr_plugin.prep.pipeline import validate
    from llvfsr_plugin.priors.store import PriorStore
    sroot = prep_shuffled_priors(tiny_root, str(tmp_path), 8)
    assert ROWS['llvfsr_sft_shuffled'][4]['shuffled'] and sroot == os.path.join(str(tmp_path), 'data_shuffled')
    for split in ('train', 'val'):
        drawn = {}
        for prior in ('mask', 'depth'):
            src, dst = (PriorStore(prior_path(r, split, 8, prior)) for r in (tiny_root, sroot))
            assert sorted(dst.keys()) == sorted(src.keys()) and dst.meta['shuffled']
            for k in dst.keys():
                source = dst.get(k)[1]['source']
                assert source != k and dst.get_bytes(k) == src.get_bytes(source)
                assert drawn.setdefault(k, source) == source  # mask and depth of the same other face
        assert sorted(drawn.values()) == sorted(drawn)  # a permutation: every face's maps given once
    assert validate(sroot, verbose=False) == []
    assert prep_shuffled_priors(tiny_root, str(tmp_path), 8) == sroot  # done: kept as it is


def train_tiny(k, steps=30):
    """A small conv net trained `steps` Adam steps under the experiment's options rescaled by `k` (1: as is):
    its parameters, flattened."""
    import torch

    import llvfsr_plugin  # noqa: F401 (basicsr's torchvision repair)
    from basicsr.losses import build_loss
    from llvfsr_plugin import options as O
    t = O.train_opt('q', {}, {}, steps)
    t = rescale_loss(t, k) if k != 1 else t
    optim = {key: v for key, v in t['train']['optim_g'].items() if key != 'type'}
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    loss, adam, g = build_loss(dict(t['train']['pixel_opt'])), torch.optim.Adam(net.parameters(), **optim), \
        torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g)
        adam.zero_grad()
        loss(net(x), y).backward()
        adam.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_null_row_is_the_same_training_in_other_rounding():
    # model1_null: loss and Adam eps x1.5 leave every step unchanged in exact arithmetic, so after 30 steps the
    # weights agree to float rounding, yet are not the same run bit for bit (a power of 2 would be: exact scaling)
    assert ROWS['model1_null'][1] == ROWS['model1'][1] and ROWS['model1_null'][4] == {'loss_scale': 1.5}
    base, null = train_tiny(1), train_tiny(1.5)
    assert (base - null).abs().max() < 1e-6
    assert (base != null).any()
    assert (train_tiny(1.5) == null).all()  # itself deterministic
    assert (train_tiny(2.0) == base).all()


def test_summary_states_the_rerun_floor_of_each_seed(tmp_path):
    import csv
    for seed, gap in ((0, 0.02), (1, -0.03)):
        report = tmp_path / ('report' if seed == 0 else f'report_s{seed}')
        report.mkdir()
        with open(report / 'per_image.csv', 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['key', 'method', 'psnr', 'face_psnr'])
            for k in range(20):
                w.writerow([k, ROWS['model1'][0], 25.0 + 0.1 * (k % 4), 24.0])
                w.writerow([k, ROWS['model1_null'][0], 25.0 + 0.1 * (k % 4) + gap, 24.0 + 2 * gap])
    summarize(str(tmp_path), [0, 1])
    result = json.load(open(tmp_path / 'summary.json'))
    assert result['1']['model1_null']['model1']['psnr']['mean'] == pytest.approx(-0.03)
    md = (tmp_path / 'summary.md').read_text()
    assert ('Rerun floor (model1_null - model1, the same training in other rounding): seed 0: psnr +0.020 '
            '[+0.020, +0.020], face_psnr +0.040 [+0.040, +0.040]; seed 1: psnr -0.030 [-0.030, -0.030], face_psnr '
            '-0.060 [-0.060, -0.060].') in md


def test_run_seed_writes_each_rows_own_options(tmp_path, tiny_root, monkeypatch):
    # the options a row asks for reach the train file basicsr reads: the null row's rescaled loss and eps,
    # the light tail's narrow map features; training and the report are stubbed (no subprocess runs)
    import argparse

    import quality_experiment
    import yaml
    trained = []

    def fake_train_and_test(out, name, record, env, **fields):
        trained.append(name)
        return dict(fields, train_minutes=0.0, cpu_minutes=0.0)

    monkeypatch.setattr(quality_experiment, 'train_and_test', fake_train_and_test)
    monkeypatch.setattr(quality_experiment.subprocess, 'run', lambda *a, **kw: None)
    args = argparse.Namespace(rows=['model1', 'model1_null', 'llvfsr_tail_light'], iters=100, batch=4, prior_size=128,
                              out=str(tmp_path), hr_size=128, gt_size=64, threads=1, sensitivity=False,
                              report_metrics=['psnr'], average_last=1)
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    assert trained == ['q_model1_s1', 'q_model1_null_s1', 'q_llvfsr_tail_light_s1']
    opt = {row: yaml.safe_load(open(tmp_path / f'q_{row}_s1_train.yml')) for row in args.rows}
    base, null = opt['model1']['train'], opt['model1_null']['train']
    assert null['pixel_opt']['loss_weight'] == 1.5 * base['pixel_opt']['loss_weight']
    assert null['optim_g']['eps'] == 1.5 * base['optim_g']['eps']
    assert opt['model1_null']['network_g'] == opt['model1']['network_g'] and opt['model1_null']['manual_seed'] == 1
    net_g = opt['llvfsr_tail_light']['network_g']
    assert (net_g['prior_tail'], net_g['prior_tail_dim'], net_g['scale']) == (True, 8, 8)


def test_a_process_given_some_rows_keeps_the_others_in_the_seeds_report(tmp_path, tiny_root, monkeypatch):
    # two processes share an out directory, one per row: the second (llvfsr_sft alone) reports Model 1, finished by
    # the first, beside its own row and pairs against it; a run of other iterations, or finished but not tested with
    # the weights asked, stays out. Training and the report are stubbed (the report command recorded).
    import argparse

    import quality_experiment
    calls = []
    monkeypatch.setattr(quality_experiment, 'train_and_test',
                        lambda out, name, record, env, **fields: dict(fields, train_minutes=0.0, cpu_minutes=0.0))
    monkeypatch.setattr(quality_experiment.subprocess, 'run', lambda cmd, **kw: calls.append(cmd[3:]))

    def finish(row, iters, tested=True):
        (tmp_path / f'{run_name(row, 1)}_timing.json').write_text(json.dumps({'row': row, 'seed': 1, 'iters': iters}))
        if tested:
            (tmp_path / 'results' / run_name(row, 1) / 'visualization' / 'q_val').mkdir(parents=True)

    finish('model1', 100)
    finish('llvfsr_tail', 50)  # other iterations
    finish('llvfsr_lr', 100, tested=False)
    args = argparse.Namespace(rows=['llvfsr_sft'], iters=100, batch=4, prior_size=128, out=str(tmp_path), hr_size=128,
                              gt_size=64, threads=1, sensitivity=False, report_metrics=['psnr'], average_last=1)
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    report = calls[-1]
    methods = [report[i + 1].split('=')[0] for i, a in enumerate(report) if a == '--method']
    assert methods == [ROWS['llvfsr_sft'][0], ROWS['model1'][0]]
    assert report[report.index('--reference') + 1] == ROWS['model1'][0]
    assert report[report.index('--out') + 1] == f'{tmp_path}/report_s1'
    args.average_last = 2  # Model 1's averaged weights were never tested: the averaged report leaves it out
    monkeypatch.setattr(quality_experiment, 'evaluate_averaged',
                        lambda out, name, test, iters, k, env: dict(test, name=name + '_avg2'))
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    assert [a for a in calls[-1] if a == '--method'] == ['--method'] and '--reference' not in calls[-1]


def test_average_last_tests_reports_and_summarizes_the_averaged_weights(tmp_path, tiny_root, monkeypatch):
    # --average-last 2 at 300 iterations: the run's checkpoints 200 and 300 averaged into its models folder, tested
    # as run q_model1_s1_avg2 and reported from its images into report_avg2_s1; a window already tested is not
    # tested again, a window the run has no checkpoints for stops in one line. Training and the test and report
    # processes are stubbed (their commands recorded).
    import argparse

    import quality_experiment
    import torch
    import yaml
    calls = []
    monkeypatch.setattr(quality_experiment, 'train_and_test',
                        lambda out, name, record, env, **fields: dict(fields, train_minutes=0.0, cpu_minutes=0.0))
    monkeypatch.setattr(quality_experiment.subprocess, 'run', lambda cmd, **kw: calls.append(cmd[3:]))
    models = tmp_path / 'experiments' / 'q_model1_s1' / 'models'
    models.mkdir(parents=True)
    for it in (100, 200, 300):
        torch.save({'params': {'w': torch.full((2,), float(it))}}, models / f'net_g_{it}.pth')
    args = argparse.Namespace(rows=['model1'], iters=300, batch=4, prior_size=128, out=str(tmp_path), hr_size=128,
                              gt_size=64, threads=1, sensitivity=False, report_metrics=['psnr'], average_last=2)
    (tmp_path / 'q_model1_s1_sensitivity.json').write_text('{}')  # of weights the training below changes
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    assert not (tmp_path / 'q_model1_s1_sensitivity.json').exists()
    ckpt = 'experiments/q_model1_s1/models/net_g_avg_200_300.pth'
    assert torch.equal(torch.load(tmp_path / ckpt, weights_only=True)['params']['w'], torch.full((2,), 250.0))
    opt = yaml.safe_load(open(tmp_path / 'q_model1_s1_avg2_test.yml'))
    last = yaml.safe_load(open(tmp_path / 'q_model1_s1_test.yml'))
    assert (opt['name'], opt['path']['pretrain_network_g']) == ('q_model1_s1_avg2', ckpt)
    assert {k: v for k, v in opt.items() if k not in ('name', 'path')} == {
        k: v for k, v in last.items() if k not in ('name', 'path')}  # the same network, data and metrics
    assert calls[0] == ['test', '-opt', 'q_model1_s1_avg2_test.yml']
    report = calls[1]
    assert report[report.index('--method') + 1].endswith('/results/q_model1_s1_avg2/visualization/q_val')
    assert report[report.index('--out') + 1] == f'{tmp_path}/report_avg2_s1'
    assert json.load(open(tmp_path / 'q_model1_s1_avg2.json')) == {'first': 200, 'last': 300, 'every': 100,
                                                                    'checkpoints': 2}
    calls.clear()
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)  # the window was tested: only the report again
    assert [c[0] for c in calls] == ['--hr']
    args.average_last = 4  # 0..300: no checkpoint 0
    with pytest.raises(SystemExit, match=r'\[quality\] --average-last 4, run q_model1_s1: 1 of the 4 checkpoints are '
                       r'not there \(e.g. .*net_g_0.pth\)'):
        quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    # the averaged reports get a summary of their own; the last checkpoint's is not touched
    import csv
    (tmp_path / 'report_avg2_s1').mkdir()
    with open(tmp_path / 'report_avg2_s1' / 'per_image.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['key', 'method', 'psnr'])
        for k in range(10):
            w.writerows([[k, ROWS['model1'][0], 25.0 + 0.1 * k], [k, ROWS['llvfsr_sft'][0], 25.2 + 0.1 * k]])
    summarize(str(tmp_path), [1], quality_experiment.weights_tag(2))
    assert json.load(open(tmp_path / 'summary_avg2.json'))['1']['llvfsr_sft']['model1']['psnr']['mean'] == \
        pytest.approx(0.2)
    assert not (tmp_path / 'summary.json').exists()


def test_landmark_net_row_needs_a_net_that_never_saw_the_experiments_faces(tmp_path, tiny_root, monkeypatch):
    """Row llvfsr_tail_light_lm: maps from the shipped LandmarkNet (the bundled faces are among those its
    training left out); a net whose training did not leave the experiment's faces out is refused in one line."""
    import torch

    from llvfsr_plugin.prep.layout import prior_path
    from llvfsr_plugin.priors.extractors import landmark_extractors as L
    from llvfsr_plugin.priors.store import PriorStore
    assert ROWS['llvfsr_tail_light_lm'][4]['maps'] == 'landmark-net'
    xroot = prep_extractor_priors(tiny_root, str(tmp_path / 'ok'), 8, 64, 'landmark-net')
    store = PriorStore(prior_path(xroot, 'val', 8, 'mask'))
    assert store.meta['extractor'] == 'landmark-net' and store.meta['landmark_net'] == L.file_sha256(L.LANDMARK_NET)
    net = L.load_landmark_net()
    unsafe = str(tmp_path / 'unsafe.pth')
    L.save_landmark_net(net, unsafe, dict(net.meta, excluded_keys=[]))
    monkeypatch.setattr(L, 'LANDMARK_NET', unsafe)
    with pytest.raises(SystemExit, match=r'may have been trained on 12 of the experiment'):
        prep_extractor_priors(tiny_root, str(tmp_path / 'refused'), 8, 64, 'landmark-net')
    assert not os.path.exists(str(tmp_path / 'refused' / 'data_landmark-net'))
    assert torch.equal(L.load_landmark_net(unsafe).shape_mean, net.shape_mean)


def test_a_finished_run_whose_images_were_deleted_is_tested_again(tmp_path, tiny_root, monkeypatch):
    # results/ deleted after a run finished: its record keeps it from training again, so its weights are tested
    # again for the report; with the weights gone too, a one-line stop says which record to delete
    import argparse

    import quality_experiment
    calls, trained = [], []
    monkeypatch.setattr(quality_experiment, 'train_and_test', lambda out, name, *a, **kw: trained.append(name))
    monkeypatch.setattr(quality_experiment.subprocess, 'run', lambda cmd, **kw: calls.append(cmd[3:]))
    (tmp_path / 'q_model1_s1_timing.json').write_text(json.dumps({'row': 'model1', 'seed': 1, 'iters': 100,
                                                                    'train_minutes': 1.0, 'cpu_minutes': 1.0}))
    args = argparse.Namespace(rows=['model1'], iters=100, batch=4, prior_size=128, out=str(tmp_path), hr_size=128,
                              gt_size=64, threads=1, sensitivity=False, report_metrics=['psnr'], average_last=1)
    with pytest.raises(SystemExit, match='q_model1_s1_timing.json records a finished run, but its test images'):
        quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    weights = tmp_path / 'experiments' / 'q_model1_s1' / 'models' / 'net_g_latest.pth'
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b'')
    quality_experiment.run_seed(args, tiny_root, 8, seed=1)
    assert trained == [] and calls[0] == ['test', '-opt', 'q_model1_s1_test.yml']
    assert calls[-1][0] == '--hr'  # then the report, as for a run trained just now


def test_finished_scores_reads_a_rows_faces_only_where_its_run_finished(tmp_path):
    # a results script pairs runs of other folders: a row's per-face scores from the seed's report, by its label,
    # and None where the run is missing or was trained to other iterations
    import csv

    import quality_experiment
    os.makedirs(tmp_path / 'report_s2')
    with open(tmp_path / 'report_s2' / 'per_image.csv', 'w', newline='') as f:
        csv.writer(f).writerows([['key', 'method', 'psnr'], [1, ROWS['model1'][0], 25.5],
                                 [1, ROWS['llvfsr_sft'][0], 25.75]])
    (tmp_path / 'q_model1_s2_timing.json').write_text(json.dumps({'iters': 3600}))
    (tmp_path / 'q_llvfsr_sft_s2_timing.json').write_text(json.dumps({'iters': 1800}))
    assert quality_experiment.finished_scores(str(tmp_path), 'model1', 2, 3600) == {'1': {'psnr': 25.5}}
    assert quality_experiment.finished_scores(str(tmp_path), 'llvfsr_sft', 2, 3600) is None
    assert quality_experiment.finished_scores(str(tmp_path), 'model1', 0, 3600) is None
