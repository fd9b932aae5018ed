"""The click command line (:mod:`collector.cli.main`, a module a command), its lock, and its
entry point ``main``."""
