"""hinas_lib: HiNAS (Zhang et al., CVPR 2020) for image denoising and super-resolution.

The names below are imported on first use (PEP 562), so that ``import hinas_lib``
and ``python -m hinas_lib`` start without importing torch: the command line then
answers Ctrl-C during start-up with one line, not a traceback.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "config", "ConfigError": "config", "get_preset": "config", "load_config": "config",
    "Genotype": "genotype", "GenotypeError": "genotype",
    "CompactSuperNet": "supernet", "SuperNet": "supernet", "build_supernet": "supernet",
    "CompactNet": "network", "HiNASNet": "network", "build_network": "network", "load_model": "model_files",
    "derive_genotype": "derive", "get_task": "tasks",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # next time a plain attribute
        return value
    raise AttributeError(f"module 'hinas_lib' has no attribute {name!r}")


def __dir__():
    return __all__
