from llvfsr_plugin._autoimport import import_modules

_modules = import_modules(__name__, __file__, '_dataset')
