"""paramiko's import of ``invoke`` is deferred, and ``Match exec`` still works."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_importing_the_transport_does_not_run_invoke() -> None:
    out = run_python(
        """
        import sys
        import collector.ssh.transport  # netmiko, paramiko
        print(type(sys.modules["invoke"]).__name__, "invoke.tasks" in sys.modules)
        """
    )
    assert out == "_Deferred False"


def test_ssh_config_match_exec_still_runs_through_invoke() -> None:
    out = run_python(
        """
        import sys
        import collector.ssh.transport
        from paramiko import SSHConfig

        config = SSHConfig.from_text(
            'Match exec "true"\\n  User yes\\nMatch exec "false"\\n  Port 2222\\n'
        )
        found = config.lookup("router1")
        print(found.get("user"), found.get("port", "22"), "invoke.tasks" in sys.modules)
        """
    )
    assert out == "yes 22 True"


def test_other_imports_of_invoke_get_the_real_module() -> None:
    out = run_python(
        """
        import collector
        from invoke import run
        import invoke.tasks
        import invoke
        print(type(invoke).__name__, invoke.tasks.__name__, invoke.run is run)
        """
    )
    assert out == "module invoke.tasks True"


def test_importing_the_core_leaves_sys_modules_alone() -> None:
    out = run_python(
        """
        import sys
        import collector
        import collector.core.aggregate
        import collector.core.records
        print("invoke" in sys.modules, "paramiko" in sys.modules)
        """
    )
    assert out == "False False"
