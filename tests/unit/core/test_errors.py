"""Every exception the collector defines derives from ``CollectorError``, which the CLI's
guard prints as one line with its exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import collector
from collector.cli.exitcodes import EXIT_DATABASE, EXIT_LOCKED, EXIT_USAGE, exit_code_for
from collector.cli.lock import LockHeld
from collector.core.errors import CollectorError
from collector.history.store import StoreError
from collector.inventory.model import InventoryError

INTERNAL = {"collector.inventory.yaml_source._DuplicateKey"}
"""Raised and caught inside one module (turned into an InventoryError there)."""


def exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(collector.__path__, "collector."):
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == loaded.__name__
            ):
                found[f"{loaded.__name__}.{name}"] = value
    return found


def test_every_collector_exception_is_a_collector_error() -> None:
    classes = exception_classes()
    assert len(classes) >= 20  # the walk found the package's exceptions
    strays = [
        name
        for name, cls in classes.items()
        if name not in INTERNAL and not issubclass(cls, CollectorError)
    ]
    assert strays == []


def test_the_guard_exit_code_of_an_uncaught_collector_error() -> None:
    assert exit_code_for(LockHeld(Path("/run/x.lock"), 42)) == EXIT_LOCKED == 75
    assert exit_code_for(StoreError("database is locked")) == EXIT_DATABASE == 5
    assert exit_code_for(InventoryError("hosts.yaml:3: bad port")) == EXIT_USAGE == 2
