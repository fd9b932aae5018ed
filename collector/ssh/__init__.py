"""The SSH edge: credentials, host keys, deadlines, error classes, the VRP session, transports.

The one package with an import-time effect: paramiko's ``invoke`` import is deferred here
(:mod:`collector.ssh.deferred`), before any module of this package imports paramiko.
"""

from collector.ssh.deferred import defer_all

defer_all()
