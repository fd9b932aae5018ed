"""collect-ike-offline: collect, keep and report Huawei VRP deleted-IPsec-tunnel records."""

__version__ = "0.1.0"
