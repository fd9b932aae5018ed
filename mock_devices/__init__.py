"""Mock Huawei VRP devices that speak real SSH (asyncssh), one or a thousand on loopback.

Modules: ``scenario`` (YAML -> device specs, faults, record generation), ``device`` (running
state: 200-record ring, clock, journal, host key), ``commands`` (user-view command tree and
abbreviations), ``session`` (the interactive VRP session), ``server`` (asyncssh listeners for a
fleet), ``fleet`` (background-thread API and the ``mock-huawei-fleet`` console script),
``process`` (run the console script as a subprocess), ``client`` (a raw shell client for tests),
``loadcheck`` (1,000-device measurement), ``pytest_plugin`` (``mock_fleet`` fixtures) and
``tables`` (the shared table layouts). Nothing here imports the collector.
"""
