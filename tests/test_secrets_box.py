"""SecretsBox: OAuth tokens encrypted at rest with MultiFernet from PUNCTUAL_SECRET_KEY."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

import automations.store.secrets_box as secrets_box
from automations.errors import PunctualError
from automations.store.secrets_box import (
    SecretDecryptionError,
    SecretKeyMissing,
    SecretsBox,
    derive_fernet_key,
)

TOKEN = "eyJzdiI6IjAwMDAwMSIsImFsZyI6IkhTNTEyIn0.refresh-token-ü"


def test_round_trip_with_a_fernet_key_used_as_is() -> None:
    key = SecretsBox.generate_key()
    box = SecretsBox(key)
    sealed = box.encrypt(TOKEN)
    assert TOKEN not in sealed and sealed.isascii()
    assert box.decrypt(sealed) == TOKEN
    # The key really is used as-is: plain Fernet with the same key reads it.
    assert Fernet(key.encode()).decrypt(sealed.encode()).decode() == TOKEN
    assert box.encrypt(TOKEN) != sealed  # random IV: equal plaintexts do not look equal


def test_arbitrary_secret_string_is_derived_with_hkdf_deterministically() -> None:
    a = SecretsBox("correct horse battery staple and then some")
    b = SecretsBox("  correct horse battery staple and then some  ")  # surrounding blanks ignored
    assert b.decrypt(a.encrypt(TOKEN)) == TOKEN
    derived = derive_fernet_key("my dev secret")
    assert len(base64.urlsafe_b64decode(derived)) == 32 and derived == derive_fernet_key("my dev secret")
    assert derived != derive_fernet_key("my dev secret!")
    with pytest.raises(SecretDecryptionError):
        SecretsBox("my dev secret").decrypt(SecretsBox("another secret").encrypt(TOKEN))


def test_rotation_first_key_encrypts_all_keys_decrypt() -> None:
    old_key, new_key = SecretsBox.generate_key(), "a brand new passphrase for 2026"
    old_box = SecretsBox(old_key)
    stored = old_box.encrypt(TOKEN)

    rotated_box = SecretsBox(f"{new_key}, {old_key}")
    assert rotated_box.key_count == 2
    assert rotated_box.decrypt(stored) == TOKEN
    fresh = rotated_box.encrypt(TOKEN)
    with pytest.raises(SecretDecryptionError):
        old_box.decrypt(fresh)  # written under the new key

    restamped = rotated_box.rotate(stored)
    new_only = SecretsBox(new_key)
    assert new_only.decrypt(restamped) == TOKEN
    with pytest.raises(SecretDecryptionError):
        new_only.decrypt(stored)  # the old key was dropped before this value was rotated
    assert SecretsBox([new_key, old_key]).decrypt(stored) == TOKEN  # a list works too


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
        lambda t: t[:20] + ("x" if t[20] != "x" else "y") + t[21:],
        lambda t: t[: len(t) // 2],
        lambda t: "",
        lambda t: "not a token at all",
        lambda t: "ünïcödé",
    ],
)
def test_tampering_is_detected(mangle) -> None:
    box = SecretsBox(SecretsBox.generate_key())
    sealed = box.encrypt(TOKEN)
    with pytest.raises(SecretDecryptionError) as info:
        box.decrypt(mangle(sealed))
    assert isinstance(info.value, PunctualError)
    assert TOKEN not in str(info.value)
    with pytest.raises(SecretDecryptionError):
        box.rotate(mangle(sealed))


@pytest.mark.parametrize("setting", ["", " ", ",", " , ,", []])
def test_missing_key_is_a_clear_error(setting) -> None:
    with pytest.raises(SecretKeyMissing):
        SecretsBox(setting)


def test_from_env() -> None:
    key = SecretsBox.generate_key()
    box = SecretsBox.from_env({"PUNCTUAL_SECRET_KEY": key})
    assert SecretsBox(key).decrypt(box.encrypt("x")) == "x"
    with pytest.raises(SecretKeyMissing, match="PUNCTUAL_SECRET_KEY"):
        SecretsBox.from_env({})
    assert key not in repr(box)


def test_non_strings_are_refused() -> None:
    box = SecretsBox("k" * 32)
    with pytest.raises(TypeError):
        box.encrypt(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        box.decrypt(None)  # type: ignore[arg-type]


def test_no_box_is_built_at_import() -> None:
    assert not [v for v in vars(secrets_box).values() if isinstance(v, SecretsBox | Fernet)]
