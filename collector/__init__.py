"""collect-ike-offline: collect, keep and report Huawei VRP deleted-IPsec-tunnel records."""

from collector.deferred import defer_all

__version__ = "0.1.0"
"""The one place the version is set: setup.cfg reads it (``attr:``), ``--version`` prints it."""

defer_all()
