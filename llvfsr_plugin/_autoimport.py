"""Import every `*<suffix>.py` module of a sub-package so its classes land in BasicSR's registries."""
import importlib
import os


def import_modules(package_name, package_file, suffix):
    folder = os.path.dirname(os.path.abspath(package_file))
    names = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
