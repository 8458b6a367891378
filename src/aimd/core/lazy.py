"""Package namespaces whose names are imported on first use (PEP 562).

A package ``__init__`` lists what it exports and where each name lives; nothing is imported until a
name is read. ``import aimd.metrics`` then costs nothing, and a command that needs one light module
does not pay for SciPy, SimpleITK or PyTorch pulled in by its siblings.

Example
-------
>>> import sys, types
>>> pkg = types.ModuleType("demo_pkg")
>>> sys.modules["demo_pkg"] = pkg
>>> lazy_exports("demo_pkg", {"json": ["dumps"], "os.path": ["join"]})
>>> pkg.dumps([1])
'[1]'
>>> sorted(n for n in dir(pkg) if not n.startswith("_"))
['dumps', 'join']
>>> pkg.missing
Traceback (most recent call last):
...
AttributeError: module 'demo_pkg' has no attribute 'missing'
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LazyPackage", "lazy_exports"]


class LazyPackage(types.ModuleType):
    """A module whose exported names are imported from their own modules on first access."""

    _lazy_names: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        table = self.__dict__.get("_lazy_names", {})
        if name not in table:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        self.__dict__[name] = value
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__.get("_lazy_names", {})))

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on its package; where an exported object has the same
        # name (``aimd.metrics.icc`` the function, from the module of that name) the object wins,
        # as it did when the package imported its names eagerly.
        table = self.__dict__.get("_lazy_names", {})
        if isinstance(value, types.ModuleType) and name in table and value.__name__ == f"{self.__name__}.{name}":
            return
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]) -> None:
    """Make ``package`` export ``exports`` (module → names) lazily.

    Parameters
    ----------
    package
        The package's ``__name__`` (it must already be in ``sys.modules``: call this from its
        ``__init__``).
    exports
        For each defining module, the names the package re-exports from it.
    """
    module = sys.modules[package]
    table = {name: source for source, names in exports.items() for name in names}
    module.__class__ = LazyPackage
    module.__dict__["_lazy_names"] = table
