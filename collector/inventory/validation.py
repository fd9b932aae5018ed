"""What may reach a device or a shell: hostnames, usernames (one place for both the
inventory and ssh_config).
"""

from __future__ import annotations

import ipaddress
import re

_SHELL_METACHARACTERS = frozenset("`$&|;<>()[]{}*?!~'\"\\#%^=,")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


# --------------------------------------------------------------------------- validation


def has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)


def valid_hostname(value: str) -> bool:
    """True for an IPv4/IPv6 address or a DNS name that is safe to hand to SSH.

    Examples:
        >>> valid_hostname("r1.par.example.net"), valid_hostname("2001:db8::1")
        (True, True)
        >>> valid_hostname("r1; reboot"), valid_hostname("-oProxyCommand=x")
        (False, False)
    """
    if not value or value != value.strip():
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return True
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        # "10.0.0.300" is not an address, and not a name either.
        return False
    return all(_DNS_LABEL.match(label) for label in labels)


def username_problem(value: str) -> str | None:
    """Why ``value`` cannot be a username, or None if it can.

    Examples:
        >>> username_problem("netops") is None
        True
        >>> username_problem("-oProxyCommand")
        'starts with "-"'
    """
    if not value:
        return "is empty"
    if value.startswith("-"):
        return 'starts with "-"'
    if has_control(value):
        return "contains control characters"
    if any(char.isspace() for char in value):
        return "contains whitespace"
    bad = sorted({char for char in value if char in _SHELL_METACHARACTERS})
    if bad:
        return f"contains shell metacharacters {''.join(bad)!r}"
    return None
