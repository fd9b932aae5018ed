"""The click command line (:mod:`collector.cli.main`), its lock, and its entry point ``main``."""
