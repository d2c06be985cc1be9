"""`python -m llvfsr_plugin {train,test} ...` (and `torchrun -m llvfsr_plugin ...`): same as `basicsr`."""
import sys

from llvfsr_plugin.cli import main

if __name__ == '__main__':
    sys.exit(main())
