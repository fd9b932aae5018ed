"""Imports deferred until first use, to keep every run's start-up short.

paramiko's ``config`` module imports ``invoke`` when paramiko is imported, only to run
the ``Match exec`` lines of an ssh_config. That import costs 0.1-0.15 s of CPU, a
quarter of the collector's start-up, on every cron run. :func:`defer` binds such a
name in ``sys.modules`` to a stand-in module: the real module is imported the first
time one of its attributes is read (``invoke.run`` for a ``Match exec`` line), and the
stand-in forwards to it from then on. (:class:`importlib.util.LazyLoader` cannot do
this on Python 3.11: a later ``import`` statement reads ``__spec__``, which loads it.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

DEFERRED = ("invoke",)
"""Modules our dependencies import but a run rarely uses."""

_LOCK = threading.Lock()


class _Deferred(ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def _real(self) -> ModuleType:
        with _LOCK:
            real: ModuleType | None = self.__dict__.get("_deferred_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__["_deferred_real"] = real
            return real

    def __getattr__(self, attribute: str) -> Any:
        # Only called for attributes a plain module lookup does not find.
        if attribute.startswith("_deferred"):
            raise AttributeError(attribute)
        return getattr(self._real(), attribute)


def defer(name: str) -> bool:
    """Stand in for top-level module ``name``; False when it is loaded or not installed.

    Examples:
        >>> defer("sys")  # already imported: left alone
        False
        >>> defer("no_such_module_here")
        False
    """
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return False
    sys.modules[name] = _Deferred(name)
    return True


def defer_all() -> None:
    """Defer every module of :data:`DEFERRED` not imported yet."""
    for name in DEFERRED:
        defer(name)
