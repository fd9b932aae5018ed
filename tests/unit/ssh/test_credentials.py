"""Credentials: where the password comes from, and that it never prints."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import click
import pytest

from collector.ssh.credentials import (
    DEFAULT_PASSWORD_ENV,
    MASK,
    Credentials,
    CredentialsError,
    MaskingFilter,
    MaskingFormatter,
    Secret,
    SecretMasker,
    load_credentials,
    password_from_env,
    prompt_password,
)

CANARY = "Canary-Pw-91x"


def test_secret_never_prints() -> None:
    secret = Secret(CANARY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "{}".format(secret)):  # noqa: UP032
        assert CANARY not in text
    assert secret.reveal() == CANARY
    assert secret == Secret(CANARY) and secret != Secret("other")
    assert bool(secret) and not Secret("")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_credentials_repr_and_str_are_masked(tmp_path: Path) -> None:
    credentials = Credentials(
        "admin", Secret(CANARY), key_file=tmp_path / "k", passphrase=Secret("pass-" + CANARY)
    )
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert CANARY not in text
        assert "admin" in text and MASK in text
    assert credentials.secrets() == (CANARY, "pass-" + CANARY)


def test_username_for() -> None:
    credentials = Credentials("default-user")
    assert credentials.username_for("inventory-user") == "inventory-user"
    assert credentials.username_for(None) == "default-user"
    with pytest.raises(CredentialsError, match="username"):
        Credentials().username_for(None)


def test_password_from_env() -> None:
    assert password_from_env("X", {"X": CANARY}) == Secret(CANARY)
    assert password_from_env("X", {}) is None
    with pytest.raises(CredentialsError, match="X is set but empty"):
        password_from_env("X", {"X": ""})


def test_password_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEFAULT_PASSWORD_ENV, CANARY)
    credentials = load_credentials("admin", interactive=False)
    assert credentials.password == Secret(CANARY)


def test_environment_wins_over_the_prompt() -> None:
    def prompt() -> Secret:
        raise AssertionError("must not prompt")

    credentials = load_credentials(
        "admin", password_env="PW", environ={"PW": CANARY}, interactive=True, prompt=prompt
    )
    assert credentials.password is not None and credentials.password.reveal() == CANARY


def test_prompt_on_a_terminal() -> None:
    credentials = load_credentials(
        "admin", environ={}, interactive=True, prompt=lambda: Secret(CANARY)
    )
    assert credentials.password == Secret(CANARY)


def test_no_password_and_no_terminal_is_a_clear_error() -> None:
    with pytest.raises(CredentialsError) as info:
        load_credentials("admin", password_env="MY_PW", environ={}, interactive=False)
    message = str(info.value)
    assert "MY_PW" in message and "--password-env" in message and "\n" not in message


def test_keys_or_agent_need_no_password(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not checked here")
    with_key = load_credentials("admin", key_file=key, environ={}, interactive=False)
    assert with_key.password is None and with_key.key_file == key
    with_agent = load_credentials("admin", use_agent=True, environ={}, interactive=False)
    assert with_agent.use_agent and with_agent.password is None


def test_missing_key_or_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"--key-file .*nope"):
        load_credentials("admin", key_file=tmp_path / "nope", environ={"P": "x"}, password_env="P")
    with pytest.raises(CredentialsError, match=r"--ssh-config .*nope"):
        load_credentials(
            "admin", ssh_config_file=tmp_path / "nope", environ={"P": "x"}, password_env="P"
        )


def test_passphrase_from_env(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("x")
    credentials = load_credentials(
        key_file=key, passphrase_env="KEY_PASS", environ={"KEY_PASS": CANARY}, interactive=False
    )
    assert credentials.passphrase == Secret(CANARY)
    assert CANARY not in repr(credentials)


def test_prompt_password_hides_input(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_prompt(text: str, **kwargs: object) -> str:
        seen.update(kwargs)
        return CANARY

    monkeypatch.setattr(click, "prompt", fake_prompt)
    assert prompt_password() == Secret(CANARY)
    assert seen["hide_input"] is True and seen["err"] is True
    monkeypatch.setattr(click, "prompt", lambda text, **kwargs: "")
    with pytest.raises(CredentialsError):
        prompt_password()


# --- masking in logs ------------------------------------------------------------------


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def test_masker() -> None:
    masker = SecretMasker([CANARY, "", "short"])
    assert masker.mask(f"a {CANARY} b short") == f"a {MASK} b {MASK}"
    masker.add(Secret("later"))
    masker.add(None)
    assert masker.mask("later") == MASK
    assert not SecretMasker()


def test_masking_filter_on_a_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter(SecretMasker([CANARY])))
    logger = _logger("test.credentials.filter", handler)
    logger.debug("device > %r", f"password {CANARY}\n")
    logger.info("plain %s and %d", CANARY, 3)
    try:
        raise RuntimeError(f"failed with {CANARY}")
    except RuntimeError:
        logger.exception("boom")
    text = stream.getvalue()
    assert CANARY not in text
    assert text.count(MASK) >= 3 and "plain ******** and 3" in text


def test_masking_formatter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter(SecretMasker([CANARY]), "%(levelname)s %(message)s"))
    logger = _logger("test.credentials.formatter", handler)
    try:
        raise ValueError(CANARY)
    except ValueError:
        logger.exception("login with %s", CANARY)
    text = stream.getvalue()
    assert CANARY not in text and "ERROR login with ********" in text
