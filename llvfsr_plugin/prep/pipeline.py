"""Prep stages behind the datasets_prep/ scripts: image LMDBs, prior stores, validation. The dataset root's
layout is `llvfsr_plugin.prep.layout`; what a prior record holds is `llvfsr_plugin.priors.contract`."""
import contextlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch.distributed as dist
from tqdm import tqdm

from llvfsr_plugin.errors import BadImage, BadText, PrepBusy, RecordError, StoreNotFound
from llvfsr_plugin.priors.contract import PRIORS, check_arrays, rename_legacy
from llvfsr_plugin.priors.extractors import Sample
from llvfsr_plugin.priors.record import decode_record
from llvfsr_plugin.priors.store import PriorStore, PriorWriter, Store, provenance_problem
from llvfsr_plugin.utils.files import pid_lock

from .images import ImageLMDBWriter, decode_png, degrade, read_rgb
from .layout import hr_path, lr_path, lr_scales, prior_dir, prior_path, skipped_txt, splits_json

BATCH = 32  # records per LMDB transaction (a kill loses at most one uncommitted batch)


def _batches(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _start_skips(root, stage):
    """A stage's run replaces that stage's lines of skipped.txt (a stale report never outlives a rerun)."""
    p = skipped_txt(root)
    if os.path.isfile(p):
        keep = [ln for ln in open(p, encoding='utf-8') if not ln.startswith(stage + '\t')]
        with open(p + '.tmp', 'w', encoding='utf-8') as f:
            f.writelines(keep)
        os.replace(p + '.tmp', p)


def _report_skips(root, stage, skips):
    if not skips:
        return
    with open(skipped_txt(root), 'a', encoding='utf-8') as f:  # O_APPEND: torchrun ranks' lines do not interleave
        for line in skips:
            f.write(f'{stage}\t{line}\n')


def root_lock(root, wait=False):
    """One prep process per dataset root (it would interleave writes into the same `.partial` stores): a second
    one stops at once with one line (PrepBusy), or with `wait` says once that it waits and goes on when the
    first ends (processes started together on one root: the first preps, the others then find it done)."""
    os.makedirs(root, exist_ok=True)

    def busy(holder):
        if not wait:
            raise PrepBusy(f'{root}: another prep process (pid {holder}) is writing this dataset; wait for it to end '
                           f'(or stop it) and rerun, or rerun with --wait (wait=True) to wait for it') from None
        print(f'[prep] {root}: another prep process (pid {holder}) is writing this dataset; waiting for it',
              flush=True)
    return pid_lock(os.path.join(root, '.prep.lock'), busy)


# ============================================================================================ image LMDBs
def make_image_lmdbs(files, root, scales, hr_size=256, on_error='fail', overwrite=False, workers=2, wait=False):
    """files: {split: [(key, hr_file)]}. Writes hr.lmdb and lr_x<s>.lmdb per split (resumable, atomic; with
    `overwrite` the old stores stay until the new ones are complete). Other splits of splits.json are kept.
    Another process prepping `root`: PrepBusy, or with `wait` wait for it (`root_lock`)."""
    with root_lock(root, wait):
        for split, items in files.items():
            _rewrite_split(root, split, [k for k, _ in items])
        for split, items in files.items():
            _make_split(root, split, items, scales, hr_size, on_error, overwrite, workers)


def _make_split(root, split, items, scales, hr_size, on_error, overwrite, workers):
    targets = {'hr': hr_path(root, split), **{f'x{s}': lr_path(root, split, s) for s in scales}}
    todo_targets = {n: p for n, p in targets.items() if overwrite or not os.path.isdir(p)}
    if not todo_targets:
        print(f'[prep] {split}: image LMDBs exist, skipping ({", ".join(targets.values())})')
        done = set(Store(targets['hr']).keys())
        _rewrite_split(root, split, [k for k, _ in items if k in done])
        return
    writers = {}
    for n, p in todo_targets.items():
        meta = {'kind': 'image', 'what': n, 'split': split, 'hr_size': hr_size,
                'degradation': 'matlab-bicubic' if n != 'hr' else None, 'scale': int(n[1:]) if n != 'hr' else 1}
        writers[n] = ImageLMDBWriter(p, meta, overwrite=overwrite)
    todo = [(k, f) for k, f in items if not all(w.has(k) for w in writers.values())]
    skips = []
    _start_skips(root, f'images {split}')

    def work(item):
        key, path = item
        try:
            hr = read_rgb(path, allow_resize_to=hr_size, scales=scales)
        except BadImage as e:
            return key, None, e
        return key, {'hr': hr, **{f'x{s}': degrade(hr, s) for s in scales}}, None

    bad = set()
    with ThreadPoolExecutor(max(1, workers)) as pool, \
            tqdm(total=len(items), initial=len(items) - len(todo), desc=f'images {split}', unit='img',
                 dynamic_ncols=True) as bar:
        for chunk in _batches(todo, BATCH):
            results = list(pool.map(work, chunk))
            for key, imgs, err in results:
                if err is not None:
                    if on_error == 'fail':
                        raise BadImage(err.path, err.problem, f'{err.fix} (finished work is kept and resumed)')
                    bad.add(key)
                    skips.append(f'{err.path}\t{err.problem}')
            for n, w in writers.items():
                w.put_images([(k, imgs[n]) for k, imgs, err in results if err is None])
            bar.update(len(chunk))
    # keys skipped in an earlier, interrupted run are found again: bad inputs stay bad
    good = [k for k, _ in items if k not in bad and all(w.has(k) for w in writers.values())]
    missing = [k for k, _ in items if k not in bad and k not in good]
    if missing:
        raise RecordError(f'{split}: {len(missing)} keys not written, e.g. {missing[:5]}')
    if 'hr' in writers:  # first: the LR stores record the HR store's digest (their pairing)
        writers.pop('hr').finalize(good)
    hr_digest = Store(hr_path(root, split)).digest()
    for w in writers.values():
        w.finalize(good, extra_meta={'hr_sha256': hr_digest})
    _report_skips(root, f'images {split}', skips)
    if skips:
        print(f'[prep] {split}: skipped {len(skips)} bad input(s); see {skipped_txt(root)}')
    _rewrite_split(root, split, good)


def _rewrite_split(root, split, keys):
    p = splits_json(root)
    splits = json.load(open(p)) if os.path.isfile(p) else {}
    splits[split] = list(keys)
    with open(p + '.tmp', 'w') as f:
        json.dump(splits, f, indent=0)
    os.replace(p + '.tmp', p)


# ============================================================================================ prior stores
def _dist_info():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def extract_priors(root, splits, scales, extractors, text_dir=None, batch_size=16, on_error='fail',
                   overwrite=False, fmt='lmdb', wait=False):
    """Run `extractors` ({prior: PriorExtractor}) on every LR image of root/<split>/lr_x<s>.lmdb.

    Under torchrun each rank takes every world_size-th pending key and writes its own shard; rank 0 merges
    the shards into the store a single process would write (same keys, same record bytes), then finalizes.
    Each store's meta records the LR store's digest (`lr_sha256`): which LR images it was computed from.
    Another process prepping `root`: PrepBusy, or with `wait` wait for it (`root_lock`).
    """
    rank, world = _dist_info()
    with root_lock(root, wait) if rank == 0 else contextlib.nullcontext():
        return _extract_priors(root, splits, scales, extractors, text_dir, batch_size, on_error, overwrite, fmt,
                               rank, world)


def _extract_priors(root, splits, scales, extractors, text_dir, batch_size, on_error, overwrite, fmt, rank, world):
    stats = {}
    for split in splits:
        for scale in scales:
            lr_store = Store(lr_path(root, split, scale))
            keys = sorted(lr_store.keys())
            jobs = {}
            for prior, ex in extractors.items():
                out = prior_path(root, split, scale, prior)
                if os.path.isdir(out) and not overwrite:
                    if rank == 0:
                        print(f'[priors] {out} exists, skipping')
                    continue
                meta = dict(ex.meta(), scale=scale, split=split, lr_size=None)
                seen = ex.possibly_seen(keys)
                if seen:  # recorded: a checkpoint trained on these maps carries it in its provenance
                    meta['possibly_seen'] = len(seen)
                    if rank == 0:
                        print(f'[priors] warning: {split}/x{scale}/{prior}: the {meta.get("model", prior)} extractor '
                              f'may have been trained on {len(seen)} of these {len(keys)} faces (e.g. {seen[0]}), '
                              f'and draws its best maps for those (benchmarks/landmark_net_seen.py); a network '
                              f'trained on them learns to trust maps more than a new face\'s deserve. To train, '
                              f'use faces it left out (datasets_prep/splits/)')
                jobs[prior] = (out, meta)
            if not jobs:
                continue
            first = decode_png(lr_store.get_bytes(keys[0]))
            lr_digest = lr_store.digest()
            for prior, (out, meta) in jobs.items():
                meta.update(lr_size=int(first.shape[0]), lr_sha256=lr_digest)
                if rank == 0:
                    _start_skips(root, f'priors {split}/x{scale}/{prior}')
            # rank 0 owns the main writers; under torchrun every rank also writes a shard of its own
            mains = {}
            if rank == 0:
                os.makedirs(os.path.dirname(jobs[next(iter(jobs))][0]), exist_ok=True)
                mains = {p: PriorWriter(o, m, fmt=fmt, overwrite=overwrite) for p, (o, m) in jobs.items()}
            _barrier()
            done = {p: mains[p].done if rank == 0 else set(Store.partial_keys(o + '.partial'))
                    for p, (o, _) in jobs.items()}
            pending = [k for k in keys if any(k not in d for d in done.values())]
            if world > 1:
                shard_keys = pending[rank::world]
                writers = {p: PriorWriter(f'{o}.shard{rank}', m, fmt='lmdb') for p, (o, m) in jobs.items()}
                for p, w in writers.items():  # a shard never redoes what the main store already has
                    w.done |= done[p]
            else:
                shard_keys, writers = pending, mains
            fallbacks = {p: 0 for p in jobs}
            skips = []
            t0 = time.time()
            bar = tqdm(total=len(shard_keys), desc=f'priors {split} x{scale}' + (f' rank{rank}' if world > 1 else ''),
                       unit='face', dynamic_ncols=True, disable=None)
            for chunk in _batches(shard_keys, batch_size):
                samples = [Sample(k, decode_png(lr_store.get_bytes(k)),
                                  os.path.join(text_dir, k + '.txt') if text_dir else None) for k in chunk]
                for prior, w in writers.items():
                    todo = [s for s in samples if not w.has(s.key)]
                    if not todo:
                        continue
                    try:
                        recs = extractors[prior].extract(todo)
                    except ValueError:  # bad text file etc.: retry one by one to name the culprit
                        recs = []
                        for s in todo:
                            try:
                                recs += extractors[prior].extract([s])
                            except ValueError as e1:
                                if on_error == 'fail':
                                    raise (BadText if isinstance(e1, BadText) else RecordError)(
                                        f'{prior} for key {s.key!r}: {e1} (rerun with --on-error skip to leave it '
                                        f'out)') from None
                                skips.append((prior, f'{s.key}\t{e1}'))
                                recs.append(None)
                    ok = [(s.key, a, m) for s, r in zip(todo, recs) if r is not None for a, m in [r]]
                    fallbacks[prior] += sum(bool(m.get('fallback')) for _, _, m in ok)
                    w.put_records(ok)
                bar.update(len(chunk))
            bar.close()
            dt = time.time() - t0
            for prior in jobs:  # every rank its own shard's
                _report_skips(root, f'priors {split}/x{scale}/{prior}', [ln for p, ln in skips if p == prior])
            if world > 1:
                for w in writers.values():
                    w.close()
                _barrier()
                if rank == 0:
                    for prior, (out, _) in jobs.items():
                        _merge_shards(mains[prior], [f'{out}.shard{r}.partial' for r in range(world)])
            if rank == 0:
                written = {}
                for prior, w in mains.items():
                    present = [k for k in keys if w.has(k)]
                    w.finalize(present)
                    written[prior] = len(present)
                stats[(split, scale)] = {'faces': len(keys), 'seconds': dt, 'fallback': fallbacks,
                                         'written': written, 'skipped': len(skips)}
                fb = ', '.join(f'{p} {n}/{len(shard_keys)}' for p, n in fallbacks.items()
                               if p in ('mask', 'depth'))
                print(f'[priors] {split} x{scale}: {len(shard_keys)} faces in {dt:.1f}s '
                      f'({len(shard_keys) / max(dt, 1e-9):.1f} faces/s)' + (f'; fell back to the mean prior: {fb}'
                                                                             if fb else ''))
            _barrier()
    return stats


def _merge_shards(main, shard_dirs):
    """Copy every shard's records into the main writer (LMDB keeps keys sorted: the result is the store a
    single process writes), then delete the shards."""
    for d in shard_dirs:
        main.put_many(Store.partial_items(d))
        shutil.rmtree(d)


# ============================================================================================== validation
def validate(root, splits=None, scales=None, priors=None, verbose=True):
    """Check every key exists in every LMDB of the dataset, decodes, and has consistent shapes and meta.
    Returns a list of problems (empty = valid)."""
    problems = []
    if not os.path.isfile(splits_json(root)):
        raise StoreNotFound(f'{root}: no splits.json; not a dataset root written by datasets_prep/make_dataset.py')
    split_keys = json.load(open(splits_json(root)))
    problems += split_problems(split_keys, splits_json(root))
    for split in splits or list(split_keys):
        try:
            hr = Store(hr_path(root, split))
        except RecordError as e:  # missing, truncated, empty or foreign
            problems.append(str(e))
            continue
        keys = sorted(hr.keys())
        found_scales = scales or lr_scales(root, split)
        hr_shape = None
        for k in tqdm(keys, desc=f'validate {split} hr', unit='img', disable=not verbose):
            try:
                img = decode_png(hr.get_bytes(k))
            except (KeyError, ValueError) as e:
                problems.append(f'{hr.path}[{k}]: {e}')
                continue
            hr_shape = hr_shape or img.shape
            if img.shape != hr_shape:
                problems.append(f'{hr.path}[{k}]: shape {img.shape} != {hr_shape}')
        for scale in found_scales:
            try:
                lr = Store(lr_path(root, split, scale))
            except RecordError as e:
                problems.append(str(e))
                continue
            problems += [p for p in [provenance_problem(lr, hr, 'hr_sha256')] if p]
            if sorted(lr.keys()) != keys:
                diff = sorted(set(keys) ^ set(lr.keys()))
                problems.append(f'{lr.path}: keys differ from hr.lmdb ({len(diff)}, e.g. {diff[:5]})')
            for k in keys:
                try:
                    img = decode_png(lr.get_bytes(k))
                except (KeyError, ValueError) as e:
                    problems.append(f'{lr.path}[{k}]: {e}')
                    continue
                if hr_shape and img.shape[0] * scale != hr_shape[0]:
                    problems.append(f'{lr.path}[{k}]: LR {img.shape} is not HR {hr_shape} / {scale}')
            pdir = prior_dir(root, split, scale)
            if not os.path.isdir(pdir):
                continue
            for name in sorted(os.listdir(pdir)):
                if name.endswith(('.partial', '.old')) or '.shard' in name:
                    problems.append(f'{os.path.join(pdir, name)}: unfinished prep output (rerun the extraction)')
                    continue
                prior = name.rsplit('.', 1)[0]
                if prior not in PRIORS:
                    problems.append(f'{os.path.join(pdir, name)}: no prior {prior!r} in the contract (a plugin\'s '
                                    f'prior whose plugin is not installed?)')
                    continue
                if priors and prior not in priors:
                    continue
                try:
                    store = PriorStore(os.path.join(pdir, name))
                except RecordError as e:
                    problems.append(str(e))
                    continue
                problems += [p for p in [provenance_problem(store, lr, 'lr_sha256')] if p]
                problems += _validate_prior(store, prior, keys, scale, verbose)
    if verbose:
        print('[validate] OK' if not problems else
              f'[validate] {len(problems)} problem(s):\n  ' + '\n  '.join(problems[:50]))
    return problems


def split_problems(split_keys, where):
    """Duplicate keys within a split, and keys in more than one split (a train/val leak)."""
    problems, seen = [], {}
    for split, keys in split_keys.items():
        dup = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) != len(keys) else []
        if dup:
            problems.append(f'{where}: split {split!r} lists {len(dup)} key(s) more than once, e.g. {dup[:5]}')
        for k in set(keys):
            seen.setdefault(k, []).append(split)
    shared = sorted(k for k, s in seen.items() if len(s) > 1)
    if shared:
        problems.append(f'{where}: {len(shared)} key(s) are in more than one split (a leak), e.g. '
                        f'{[(k, seen[k]) for k in shared[:5]]}')
    return problems


def _validate_prior(store, prior, keys, scale, verbose):
    problems = []
    try:
        meta = store.meta
    except RecordError as e:
        return [str(e)]
    if meta.get('prior') != prior:
        problems.append(f'{store.path}: meta prior {meta.get("prior")!r} != file name {prior!r}')
    if meta.get('scale') != scale:
        problems.append(f'{store.path}: meta scale {meta.get("scale")} != x{scale} of its folder')
    present = set(store.keys())
    missing = [k for k in keys if k not in present]
    if missing:
        problems.append(f'{store.path}: {len(missing)} key(s) missing, e.g. {missing[:5]}')
    ref = None
    for k in tqdm([k for k in keys if k in present], desc=f'validate {prior} x{scale}', unit='rec',
                  disable=not verbose):
        where = f'{store.path}[{k}]'
        try:
            arrays, _ = decode_record(store.get_bytes(k), where)
            arrays = rename_legacy(prior, arrays)
            check_arrays(prior, arrays, where)
        except (RecordError, KeyError) as e:
            problems.append(str(e))
            continue
        spec = PRIORS[prior]
        if spec.kind == 'text':
            if arrays['tokens'].shape[1] != meta.get('text_dim'):
                problems.append(f'{where}: token dim {arrays["tokens"].shape[1]} != meta text_dim '
                                f'{meta.get("text_dim")}')
            continue
        a = arrays[prior]
        ref = ref or a.shape
        if a.shape != ref or (meta.get('prior_size') and a.shape[0] != meta['prior_size']):
            problems.append(f'{where}: map shape {a.shape} inconsistent (first {ref}, meta prior_size '
                            f'{meta.get("prior_size")})')
        if spec.values == 'labels' and meta.get('num_classes') and int(a.max()) >= meta['num_classes']:
            problems.append(f'{where}: label {int(a.max())} >= num_classes {meta.get("num_classes")}')
        if spec.values == 'continuous' and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
            problems.append(f'{where}: {prior} outside [0, 1]')
    return problems
