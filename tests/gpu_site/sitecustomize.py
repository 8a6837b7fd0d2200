"""Installs the simulated GPUs of tests/zeus_seams.py in a Python process started while `simulated_gpus` is active.

Python imports this module at start-up because `simulated_gpus` puts this folder on PYTHONPATH; it does nothing
unless LEM_SIMULATED_GPUS is set.
"""

import os
import sys

if os.environ.get("LEM_SIMULATED_GPUS"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from zeus_seams import install_from_environment

    install_from_environment()
