"""The pure core: records, taxonomy, parsers, clock math, aggregation, option values.

Standard library only (the import contract forbids netmiko, paramiko, asyncssh, click,
tabulate, psycopg, prometheus_client and yaml here), no I/O.
"""
