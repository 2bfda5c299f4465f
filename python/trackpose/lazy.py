"""Names a package imports on first use (PEP 562), so that importing it, the command line's help and its
torch-free commands do not pay for torch, scipy or Dask."""
from __future__ import annotations

import importlib


def lazy_names(package: str, where: dict):
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps each public name to the submodule (relative to
    the package) that defines it; a name is imported on first use and then kept in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
