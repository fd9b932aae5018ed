"""collect-ike-offline: collect, keep and report Huawei VRP deleted-IPsec-tunnel records.

Importing this package does nothing but name the program and set its version: the layers
are its subpackages (docs/ARCHITECTURE.md has the map, ``.importlinter`` the contract that
holds them).
"""

__version__ = "0.1.0"
"""The one place the version is set: setup.cfg reads it (``attr:``), ``--version`` prints it."""

PROGRAM = "collect-ike-offline"
"""The program's name: in messages, the log prefix, the lock file, the data directory and
the history's schema marker."""
