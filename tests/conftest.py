"""Shared pytest configuration: plugins that start mock fleets and test servers."""

pytest_plugins = ["mock_devices.pytest_plugin", "pg_server", "sshd_server"]
