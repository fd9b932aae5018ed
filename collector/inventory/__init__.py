"""The inventory: Nornir YAML (with line marks) and CSV loading, the device builder, selection."""
