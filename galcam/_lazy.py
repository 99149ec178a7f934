"""Lazy public names for galcam's packages (so that importing them never loads torch).

A shared helper at the bottom of galcam's layers: it imports no other galcam module.
"""

import importlib
import sys

__all__ = ["lazy_exports"]


def lazy_exports(package, mapping, *, relative=True):
    """Module-level ``__getattr__`` and ``__dir__`` that import names on first use.

    Parameters
    ----------
    package : str
        ``__name__`` of the package.
    mapping : dict of str to str
        Public name -> module that defines it: a submodule of ``package`` when
        ``relative`` (e.g. ``"tiling"``), else an absolute module name.
    relative : bool, optional

    Returns
    -------
    getattr, dir : callables
        To assign to the package's ``__getattr__`` and ``__dir__`` (PEP 562). A name is
        imported once and then cached in the package's namespace.
    """

    def __getattr__(name):
        if name in mapping:
            module = f"{package}.{mapping[name]}" if relative else mapping[name]
            value = getattr(importlib.import_module(module), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(mapping))

    return __getattr__, __dir__
