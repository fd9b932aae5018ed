"""Load the device inventory (Nornir SimpleInventory YAML or a flat CSV).

A Nornir ``hosts.yaml`` (with optional ``groups.yaml`` and ``defaults.yaml`` beside
it) is resolved with Nornir's inheritance: a host's attribute comes from the host,
then its groups depth-first (groups can have groups), then the defaults. ``data`` and
``connection_options.netmiko.extras`` are merged key by key in the same order (Nornir
itself takes the first whole ``extras`` mapping; merging lets a group set
``ssh_config_file`` and a host add ``use_keys``).

Everything that reaches a device or a shell is validated here, before anything
connects: hostnames must be DNS names or IP addresses, usernames carry no
whitespace, control characters, shell metacharacters or leading ``-``. Every
error is one line naming the file and line and what to do (:class:`InventoryError`).

:func:`load_inventory` picks the reader (:mod:`~collector.inventory.nornir_files`,
:mod:`~collector.inventory.csv_files`); the checks live in :mod:`~collector.inventory.validation`,
the filters and the shard split (pure functions over the loaded inventory) in
:mod:`~collector.inventory.selection`.
"""

from __future__ import annotations

import os
from pathlib import Path

from collector.inventory.csv_files import load_csv
from collector.inventory.model import Inventory, InventoryError
from collector.inventory.nornir_files import load_nornir

# ---------------------------------------------------------------------------- entry


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load an inventory, picking the format from the path.

    Args:
        path: A directory holding ``hosts.yaml`` (or ``hosts.yml``), a Nornir hosts
            file (``*.yaml``/``*.yml``; ``groups.yaml``/``defaults.yaml`` are read from
            beside it), or a CSV file (``*.csv``).

    Returns:
        The devices in file order, with warnings to show the operator.

    Raises:
        InventoryError: One line naming the file (and line) and what to do.
    """
    given = Path(path)
    if given.is_dir():
        candidates = [given / "hosts.yaml", given / "hosts.yml"]
        found = [candidate for candidate in candidates if candidate.is_file()]
        if not found:
            raise InventoryError(
                f"{given}: directory has no hosts.yaml; give a Nornir inventory directory, "
                f"a hosts.yaml or a .csv file"
            )
        return load_nornir(found[0], given)
    suffix = given.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_nornir(given, given)
    if suffix == ".csv":
        return load_csv(given)
    if not given.exists():
        raise InventoryError(f"{given}: no such file or directory; check --inventory")
    raise InventoryError(
        f"{given}: not a YAML (.yaml, .yml) or CSV (.csv) inventory; rename it or "
        f"point --inventory at a Nornir inventory directory"
    )
