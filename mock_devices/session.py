"""One interactive VRP user-view session over an SSH channel.

The session is a small coroutine driving a byte channel: it echoes what the client types, prints
``<hostname>``, runs commands from ``commands.py`` and pages long output with ``---- More ----``
until ``screen-length 0 temporary`` switches paging off. Faults from the scenario change what it
says (or stop it saying anything). Every line received goes into the device's journal.

Device variants change what it prints: an HA timestamp line (``stamp``) first in every display
command's output, the ``display clock`` style, NE40E ``display ike offline history`` sections
per slot, a multi-SPU firewall's ``slot S cpu C`` tables, and row-like noise outside the
table. A multi-SPU firewall asked without ``slot`` answers with its first SPU's table (the
SPU listed first in the scenario), as the collector must ask each SPU in turn anyway.

VRP ends lines with CR LF. A client may end its lines with CR (OpenSSH in a terminal), LF
(netmiko's ``RETURN``) or CR LF; all three count as one Enter.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

import asyncssh

from mock_devices.clocktext import clock_lines, stamp_line
from mock_devices.commands import Command, CommandError, ErrorKind, command_tree, parse_command
from mock_devices.device import DeviceState, buffer_label
from mock_devices.scenario import Fault
from mock_devices.tables import (
    Layout,
    Row,
    firewall_reason,
    frame_history_section,
    frame_table,
    render_row,
)

CRLF = "\r\n"
MORE = "  ---- More ----"
# What VRP sends after a key at the More prompt: cursor 16 left, 16 spaces, cursor 16 left.
MORE_ERASE = "\x1b[16D                \x1b[16D"
CTRL_C = 0x03
BACKSPACES = (0x08, 0x7F)
SLOW_DEFAULT_MS = 2000
"""Per-command delay of the ``slow`` fault when the scenario sets no ``latency_ms``."""

VTY_BANNER = (
    "Info: The max number of VTY users is 10, and the number of current VTY users on line is 1."
)
PASSWORD_CHANGE_PROMPT = (
    "Warning: The password has expired, please change the password in time."
    + CRLF
    + "The password needs to be changed. Change now? [Y/N]:"
)
SAVE_PROMPT = (
    "Warning: There are security risks in the configuration file. Are you sure to save now?[Y/N]:"
)
SAVE_CONFIRM = "Warning: The current configuration will be written to the device. Continue? [Y/N]:"
SCREEN_LENGTH_INFO = (
    "Info: The configuration takes effect on the current user terminal interface only."
)
NOISE_ROW = Row("10.1.1.1", "dpd timeout", 2, datetime(2024, 3, 5, 10, 0, 0))
"""What the row-like noise outside the table shows (never one of the device's records)."""
NOISE_BANNER = "  10.1.1.1  dpd timeout  v2  2024-03-05 10:00:00"
DISPLAY_ACTIONS = frozenset(
    {"clock", "version", "ike_offline", "ike_offline_history", "ike_error_history"}
)


class SessionClosed(Exception):
    """The client went away (or the device dropped the connection on purpose)."""


class VrpSession(asyncssh.SSHServerSession[bytes]):
    """A VRP user view on one SSH channel (asyncssh session object, binary channel)."""

    def __init__(self, device: DeviceState) -> None:
        self.device = device
        self.spec = device.spec
        self.number = device.new_session()
        self.paging = True
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._inbuf = bytearray()
        self._data = asyncio.Event()
        self._closed = False
        self._eof = False
        self._skip_lf = False
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    # -- asyncssh callbacks --------------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(self, term_type: str, term_size: object, term_modes: object) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        # VRP has no exec channel: a client must use an interactive shell.
        return False

    def session_started(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._inbuf += data
        self._data.set()

    def eof_received(self) -> bool:
        # The client sends no more, but still reads: finish what it typed, then end.
        self._eof = True
        self._data.set()
        return True  # keep our side open: asyncssh would close the channel on False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._data.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- low-level I/O -------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Send text to the client (latin-1 keeps garbage bytes intact)."""
        if self._chan is None or self._closed:
            raise SessionClosed
        self._chan.write(text.encode("utf-8", "surrogateescape"))

    def write_bytes(self, data: bytes) -> None:
        """Send raw bytes."""
        if self._chan is None or self._closed:
            raise SessionClosed
        self._chan.write(data)

    async def _next_byte(self) -> int:
        while not self._inbuf:
            if self._closed or self._eof:
                raise SessionClosed
            self._data.clear()
            await self._data.wait()
        byte = self._inbuf[0]
        del self._inbuf[0]
        return byte

    async def read_line(self, echo: bool = True) -> str:
        """Read one line, echoing it the way VRP does, and return it without the line end."""
        line = bytearray()
        while True:
            if not self._inbuf:
                if self._closed or self._eof:
                    raise SessionClosed
                self._data.clear()
                await self._data.wait()
                continue
            # Process everything already received in one go: one echo write per chunk.
            echo_out = bytearray()
            done = False
            while self._inbuf and not done:
                byte = self._inbuf[0]
                del self._inbuf[0]
                if byte == 0x0A and self._skip_lf:
                    self._skip_lf = False
                    continue
                self._skip_lf = False
                if byte in (0x0D, 0x0A):
                    self._skip_lf = byte == 0x0D
                    echo_out += b"\r\n"
                    done = True
                elif byte in BACKSPACES:
                    if line:
                        line.pop()
                        if echo:
                            echo_out += b"\b \b"
                elif byte == CTRL_C:
                    line.clear()
                    echo_out += b"^C\r\n"
                    done = True
                elif byte == 0x1B:
                    # Cursor keys and other escape sequences: VRP ignores them here.
                    while self._inbuf and not (
                        0x40 <= self._inbuf[0] <= 0x7E and self._inbuf[0] != 0x5B
                    ):
                        del self._inbuf[0]
                    if self._inbuf:
                        del self._inbuf[0]
                elif byte >= 0x20 or byte == 0x09:
                    line.append(byte)
                    if echo:
                        echo_out.append(byte)
            if echo_out:
                self.write_bytes(bytes(echo_out))
            if done:
                return line.decode("utf-8", "replace")

    async def read_key(self) -> int:
        """Read one key press (for ``---- More ----``); CR LF counts as one Enter."""
        while True:
            byte = await self._next_byte()
            if byte == 0x0A and self._skip_lf:
                self._skip_lf = False
                continue
            self._skip_lf = byte == 0x0D
            return byte

    @property
    def prompt(self) -> str:
        """``<hostname>``, or ``HRP_M<hostname>`` on an HA master firewall."""
        return self.spec.prompt_name

    # -- the session ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._login()
            while True:
                self.write(self.prompt)
                line = await self.read_line()
                self.device.record(self.number, "command", line)
                if not await self._execute(line):
                    break
        except (SessionClosed, asyncssh.Error, ConnectionError, BrokenPipeError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.device.record(self.number, "disconnect", "")
            if self._chan is not None and not self._closed:
                self._closed = True
                # Report exit status 0 as VRP does after "quit" (OpenSSH exits 255 without it).
                self._chan.exit(0)

    async def _login(self) -> None:
        if self.spec.login_delay_ms:
            # A slow device: the login was accepted, the VTY's banner and prompt come later.
            await asyncio.sleep(self.spec.login_delay_ms / 1000)
        now = self.device.now_aware()
        self.write(
            CRLF + VTY_BANNER + CRLF + f"      The current login time is {_vrp_time(now)}." + CRLF
        )
        if self.spec.has(Fault.PASSWORD_CHANGE_PROMPT):
            await self._password_change_dialogue()
        if self.spec.has(Fault.SAVE_PROMPT):
            await self._save_dialogue()

    async def _ask_yes_no(self, question: str) -> bool:
        while True:
            self.write(question)
            answer = await self.read_line()
            self.device.record(self.number, "answer", answer)
            if answer.strip().lower() in ("y", "yes"):
                return True
            if answer.strip().lower() in ("n", "no"):
                return False

    async def _password_change_dialogue(self) -> None:
        if not await self._ask_yes_no(PASSWORD_CHANGE_PROMPT):
            return
        for question in (
            "Please enter old password: ",
            "Please enter new password: ",
            "Please confirm new password: ",
        ):
            self.write(question)
            await self.read_line(echo=False)
            self.device.record(self.number, "answer", "********")
        self.device.record(self.number, "password-change", "password changed")
        self.write("Info: Your password has been changed. Save it carefully." + CRLF)

    async def _save_dialogue(self) -> None:
        if not await self._ask_yes_no(SAVE_PROMPT):
            return
        if not await self._ask_yes_no(SAVE_CONFIRM):
            return
        self.device.record(self.number, "config-saved", "configuration saved")
        # Saving takes a while on a device; the prompt comes in a later packet than the result.
        self.write(" It will take several minutes to save configuration file, please wait")
        for _ in range(5):
            await asyncio.sleep(0.1)
            self.write(".")
        self.write(
            CRLF
            + " Configuration file had been saved successfully"
            + CRLF
            + " Note: The configuration file will take effect after being activated"
            + CRLF
        )
        await asyncio.sleep(0.3)

    async def _execute(self, line: str) -> bool:
        """Run one typed line; ``False`` ends the session."""
        parsed = parse_command(line, command_tree(self.spec.layout, bool(self.spec.spus)))
        if parsed is None:
            if self.spec.enter_latency_ms:  # a busy device answers a key press late
                await asyncio.sleep(self.spec.enter_latency_ms / 1000)
            return True
        delay_ms = self.spec.latency_ms
        if self.spec.has(Fault.SLOW) and not delay_ms:
            delay_ms = SLOW_DEFAULT_MS
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if isinstance(parsed, CommandError):
            await self.emit(parsed.lines(self.prompt))
            return True
        return await self._run_command(parsed, line)

    async def _run_command(self, command: Command, line: str) -> bool:
        action = command.action
        if action == "quit":
            return False
        if action == "screen_length":
            if self.spec.has(Fault.REJECT_SCREEN_LENGTH):
                await self.emit(CommandError(ErrorKind.UNRECOGNIZED, 0).lines(self.prompt))
                return True
            self.paging = command.params.get("<0-512>", "0") != "0"
            await self.emit([SCREEN_LENGTH_INFO])
            return True
        if action == "clock":
            clock = self.spec.clock
            now = self.device.now_aware()
            lines = clock_lines(now, clock.style, clock.zone_label, clock.dst_name, clock.dst_years)
            await self.emit(self._stamped(lines))
            return True
        if action == "version":
            lines = _version_lines(self.spec.model, self.spec.layout, self.device.uptime)
            await self.emit(self._stamped(lines))
            return True
        if action == "ike_offline":
            return await self._ike_offline(command, line)
        if action in ("ike_offline_history", "ike_error_history"):
            return await self._ike_history(command, line)
        await self.emit(CommandError(ErrorKind.UNRECOGNIZED, 0).lines(self.prompt))
        return True

    def _stamped(self, lines: list[str]) -> list[str]:
        """A display command's output, after the HA timestamp line if the device prints one."""
        stamp = stamp_line(self.device.now_aware(), self.spec.stamp)
        return lines if stamp is None else [stamp, *lines]

    def _noisy(self, lines: list[str]) -> list[str]:
        """The table with the scenario's row-like lines before and after it (outside it)."""
        spec = self.spec
        noise = render_row(NOISE_ROW, spec.layout)
        if spec.leading_row_like_noise:
            lines = [noise, *lines]
        if spec.trailing_row_like_noise:
            lines = [*lines, "", noise, NOISE_BANNER]
        return lines

    async def _refuse(self, command: Command, placeholder: str) -> bool:
        """``Error: Wrong parameter`` with the caret under ``placeholder``'s value."""
        column = command.columns.get(placeholder, 0)
        await self.emit(CommandError(ErrorKind.WRONG_PARAMETER, column).lines(self.prompt))
        return True

    def _spu_buffer(self, command: Command) -> str | CommandError | None:
        """The buffer ``slot S cpu C`` names (the first SPU without them; None: one buffer)."""
        spus = self.spec.spus
        if not spus:
            return None
        slot, cpu = command.params.get("<slot:0-32>"), command.params.get("<cpu:0-31>")
        if slot is None or cpu is None:
            return buffer_label(spus[0])
        if not any(s == int(slot) for s, _ in spus):
            return CommandError(ErrorKind.WRONG_PARAMETER, command.columns["<slot:0-32>"])
        if (int(slot), int(cpu)) not in spus:
            return CommandError(ErrorKind.WRONG_PARAMETER, command.columns["<cpu:0-31>"])
        return f"{int(slot)}/{int(cpu)}"

    async def _refused_or_slow(self, line: str) -> bool:
        """Faults before a table: refuse the command (older firmware), or take very long."""
        spec = self.spec
        if spec.has(Fault.COMMAND_UNSUPPORTED):
            # Older firmware has no "offline-info" under "display ike": caret under that keyword.
            column = _keyword_column(line, 2)
            await self.emit(CommandError(ErrorKind.UNRECOGNIZED, column).lines(self.prompt))
            return True
        if spec.has(Fault.VERY_SLOW):
            await asyncio.sleep(spec.very_slow_s)
        return False

    def _shown(self, body: list[str]) -> list[str]:
        """The rows printed of a table whose count says ``len(body)`` (truncated_table: 2/3)."""
        if self.spec.has(Fault.TRUNCATED_TABLE):
            return body[: max(0, (len(body) * 2) // 3)]
        return body

    async def _answer_table(self, lines: list[str]) -> None:
        """Print a table with the stamp and noise the device adds, or the fault it has."""
        spec = self.spec
        if spec.has(Fault.GARBAGE_OUTPUT):
            await self.emit(_garbage_lines(f"{spec.name}:{self.number}"))
            return
        lines = self._stamped(self._noisy(lines))
        if spec.has(Fault.DROP_MID_OUTPUT):
            half = lines[: max(1, len(lines) // 2)]
            self.write(CRLF.join(half) + CRLF)
            await asyncio.sleep(0.05)
            connection = self._chan.get_extra_info("connection") if self._chan else None
            if connection is not None:
                connection.abort()
            raise SessionClosed
        await self.emit(lines)

    async def _ike_history(self, command: Command, line: str) -> bool:
        """NE40E ``display ike offline history`` / ``display ike error history``."""
        if await self._refused_or_slow(line):
            return True
        slots = [slot for slot, _ in self.spec.buffers if slot is not None]
        wanted = command.params.get("<slot:0-32>")
        if wanted is not None:
            if int(wanted) not in slots:
                return await self._refuse(command, "<slot:0-32>")
            slots = [int(wanted)]
        peer = command.params.get("<ip>")
        vpn = command.params.get("<vpn:name>")
        port = command.params.get("<port:0-65535>")
        kind = "offline" if command.action == "ike_offline_history" else "error"
        lines: list[str] = []
        for slot in slots:
            if kind == "offline":
                rows, body = self.device.rendered_records("ne40e", str(slot))
            else:
                rows = self.device.error_records(str(slot))
                body = [render_row(row, "ne40e") for row in rows]
            body = [
                text
                for row, text in zip(rows, body, strict=True)
                if (peer is None or row.peer == peer)
                and (vpn is None or row.vpn == vpn)
                and (port is None or row.port == int(port))
            ]
            if lines:
                lines.append("")
            lines += frame_history_section(self._shown(body), slot, len(body), kind)
        await self._answer_table(lines)
        return True

    async def _ike_offline(self, command: Command, line: str) -> bool:
        if await self._refused_or_slow(line):
            return True
        buffer = self._spu_buffer(command)
        if isinstance(buffer, CommandError):
            await self.emit(buffer.lines(self.prompt))
            return True
        layout = self.spec.layout
        rows, body = self.device.rendered_records(layout, buffer)
        peer = command.params.get("<ip>")
        if peer is not None:
            kept = [(row, text) for row, text in zip(rows, body, strict=True) if row.peer == peer]
            rows, body = [row for row, _ in kept], [text for _, text in kept]
        body = self._hostile(rows, body)
        if self.spec.has(Fault.ENDLESS_OUTPUT):
            self.write(CRLF.join(frame_table(body, layout, len(body))[:6]) + CRLF)
            await self._endless()
        await self._answer_table(frame_table(self._shown(body), layout, len(body)))
        return True

    def _hostile(self, rows: list[Row], body: list[str]) -> list[str]:
        """The rows as a hostile device sends them: with terminal noise, or far too many."""
        spec = self.spec
        if spec.has(Fault.TERMINAL_NOISE):
            body = _noisy_rows(rows, body, spec.layout)
        if spec.has(Fault.HUGE_TABLE) and body:
            body = [body[index % len(body)] for index in range(spec.huge_rows)]
        return body

    async def _endless(self) -> None:
        """Send escapes and binary bytes until the client goes away (at the pace it reads)."""
        chunk = ("\x1b[31m\udcff\udcfe\x00garbage\x9b2J\x1b]0;t\x07 " * 256 + CRLF).encode(
            "utf-8", "surrogateescape"
        ) * 16
        while True:
            await self._writable.wait()
            self.write_bytes(chunk)
            await asyncio.sleep(0)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def emit(self, lines: list[str]) -> None:
        """Print command output, paging it while paging is on."""
        if not self.paging or len(lines) <= self.spec.page_lines:
            self.write(CRLF.join(lines) + CRLF if lines else "")
            return
        index = 0
        step = self.spec.page_lines
        while index < len(lines):
            chunk = lines[index : index + step]
            index += len(chunk)
            self.write("".join(line + CRLF for line in chunk))
            if index >= len(lines):
                return
            self.write(MORE)
            while True:
                key = await self.read_key()
                self.device.record(self.number, "key", _key_name(key))
                if key == ord(" "):
                    step = self.spec.page_lines
                    break
                if key in (0x0D, 0x0A):
                    step = 1
                    break
                if key in (ord("q"), ord("Q"), CTRL_C):
                    self.write(MORE_ERASE)
                    return
            self.write(MORE_ERASE)


def _noisy_rows(rows: list[Row], body: list[str], layout: Layout) -> list[str]:
    """The rows with terminal controls a confused terminal server might add: an OSC title
    before each row, a C1 CSI inside the reason (``d\x9b2Jpd timeout``), a DCS string at
    the end. A collector that strips them all reads the same records."""
    noisy = []
    for row, line in zip(rows, body, strict=True):
        reason = firewall_reason(row.reason) if layout == "firewall" else row.reason
        line = line.replace(reason, reason[:1] + "\x9b2J" + reason[1:], 1)
        noisy.append("\x1b]0;" + row.peer + "\x07" + line + "\x1bP1$r0m\x1b\\")
    return noisy


def _key_name(key: int) -> str:
    names = {0x20: "space", 0x0D: "enter", 0x0A: "enter", CTRL_C: "ctrl-c"}
    return names.get(key, chr(key) if 0x20 < key < 0x7F else f"0x{key:02x}")


def _keyword_column(line: str, index: int) -> int:
    """Column where the ``index``-th token (0-based) of ``line`` starts (end of line if absent)."""
    position = 0
    for number, token in enumerate(line.split()):
        position = line.index(token, position)
        if number == index:
            return position
        position += len(token)
    return len(line.rstrip())


def _vrp_time(now: datetime) -> str:
    """``2026-11-27 10:11:12+08:00`` (VRP's clock format with the zone offset)."""
    offset = now.strftime("%z")
    return now.strftime("%Y-%m-%d %H:%M:%S") + f"{offset[:3]}:{offset[3:]}"


def _version_lines(model: str, layout: str, uptime: object) -> list[str]:
    """``display version``: the VRP banner and the model."""
    days = getattr(uptime, "days", 0)
    seconds = getattr(uptime, "seconds", 0)
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    up = f"{days} days, {hours} hours, {minutes} minutes"
    if layout == "ne40e":
        return [
            "Huawei Versatile Routing Platform Software",
            "VRP (R) software, Version 8.180 (NE40E V800R012C00SPC300)",
            "Copyright (C) 2012-2020 Huawei Technologies Co., Ltd.",
            f"HUAWEI {model} uptime is {up}",
        ]
    if layout == "router":
        return [
            "Huawei Versatile Routing Platform Software",
            "VRP (R) software, Version 5.170 (AR6120 V300R021C10SPC100)",
            "Copyright (C) 2011-2021 HUAWEI TECH CO., LTD",
            f"Huawei {model} Router uptime is {up}",
            "BKP 0 version information:",
            "1. PCB      Version  : AR01BAK3A VER.B",
        ]
    return [
        "Huawei Versatile Routing Platform Software",
        "VRP (R) software, Version 5.170 (USG6500E V600R007C20SPC600)"
        if model.startswith("USG6")
        else "VRP (R) software, Version 5.160 (USG9500 V500R005C20SPC500)",
        "Copyright (C) 2014-2021 Huawei Technologies Co., Ltd.",
        f"{model} uptime is {up}",
        "Patch version: V600R007SPH010",
    ]


def _garbage_lines(seed: str) -> list[str]:
    """Deterministic junk where the table should be (a confused or corrupted session)."""
    rng = random.Random(f"garbage:{seed}")
    alphabet = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "<>[]"] + [
        "\ufffd",
        "\u00e9",
        "\u00a7",
    ]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(10, 78))) for _ in range(12)]
