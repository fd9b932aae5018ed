"""collect-ike-offline: collect, keep and report Huawei VRP deleted-IPsec-tunnel records.

Importing this package does nothing but set the version: the layers are its subpackages
(docs/ARCHITECTURE.md has the map, ``.importlinter`` the contract that holds them).
"""

__version__ = "0.1.0"
"""The one place the version is set: setup.cfg reads it (``attr:``), ``--version`` prints it."""
