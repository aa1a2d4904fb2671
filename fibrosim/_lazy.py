"""Lazy re-export of names from submodules, so a subpackage's namespace loads on demand."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """Return ``(__getattr__, __all__)`` for a package whose public names live in submodules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        Public name -> submodule (relative to ``package``) that defines it.  A submodule may be
        exported by mapping its own name to itself.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{names[name]}")
        value = module if names[name] == name else getattr(module, name)
        # bind it in the package, so later lookups are plain attribute access (a module
        # __getattr__ runs on every access otherwise, which costs microseconds per call)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__, sorted(names)
