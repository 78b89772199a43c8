"""Lazy package exports (PEP 562), so that importing a package stays cheap.

The ``guardian`` CLI imports every command group's module at start-up; a package whose
``__init__`` imported scikit-learn, pysnmp or Panel eagerly would make ``guardian --help``
take seconds. Packages declare what they export and where it lives instead::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"RiskModel": ".risk"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """Module-level ``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        Public name → module that defines it (absolute, or relative to ``package``
        when it starts with a dot).
    """

    def __getattr__(name: str) -> object:
        if name in exports:
            module = importlib.import_module(exports[name], package)
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, list(exports)
