"""Encryption at rest for secrets Punctual stores (Zoom and Google OAuth tokens).

``PUNCTUAL_SECRET_KEY`` holds one or more keys, comma-separated. Each is either a Fernet key (44 characters
of url-safe base64, as ``SecretsBox.generate_key()`` prints) used as is, or any other secret string from
which a Fernet key is derived with HKDF-SHA256. The first key encrypts; all of them decrypt, so rotating is:
put the new key first, keep the old ones after it, re-encrypt stored values with :meth:`SecretsBox.rotate`,
then drop the old keys.

HKDF does not stretch a weak password: a derived key is only as strong as the secret string it comes from,
so use a long random value. Ciphertexts are Fernet tokens (AES-128-CBC + HMAC-SHA256, timestamped), which
detect any tampering. Nothing is created at import: the app builds one box from its settings.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from automations.errors import PunctualError

SETTING = "PUNCTUAL_SECRET_KEY"

# Fixed salt and info: derivation must give the same key on every start and every worker. The info string
# binds the derived key to this use, so the same secret string used elsewhere yields an unrelated key.
_HKDF_SALT = b"punctual.secrets_box.v1"
_HKDF_INFO = b"punctual fernet key for tokens at rest"


class SecretKeyMissing(PunctualError):
    """``PUNCTUAL_SECRET_KEY`` is unset or holds no key."""

    code = "secret_key_missing"


class SecretDecryptionError(PunctualError):
    """A stored secret failed authentication: tampered, truncated, or encrypted under a key we lack."""

    code = "secret_decryption_failed"


def derive_fernet_key(secret: str) -> bytes:
    """The Fernet key for one entry of the setting: itself if it already is a Fernet key, else HKDF."""
    secret = secret.strip()
    if _is_fernet_key(secret):
        return secret.encode("ascii")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


def _is_fernet_key(value: str) -> bool:
    if len(value) != 44:
        return False
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


class SecretsBox:
    """Encrypts and decrypts short strings with a :class:`~cryptography.fernet.MultiFernet`."""

    def __init__(self, keys: str | Sequence[str]) -> None:
        entries = keys.split(",") if isinstance(keys, str) else list(keys)
        secrets = [entry.strip() for entry in entries if entry and entry.strip()]
        if not secrets:
            raise SecretKeyMissing(f"{SETTING} must hold at least one key")
        self._fernet = MultiFernet([Fernet(derive_fernet_key(s)) for s in secrets])
        self.key_count = len(secrets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, name: str = SETTING) -> SecretsBox:
        """Build from the environment (or any mapping of settings)."""
        env = os.environ if environ is None else environ
        value = env.get(name)
        if not value:
            raise SecretKeyMissing(f"{name} is not set")
        return cls(value)

    @staticmethod
    def generate_key() -> str:
        """A fresh random Fernet key, suitable for ``PUNCTUAL_SECRET_KEY``."""
        return Fernet.generate_key().decode("ascii")

    def __repr__(self) -> str:
        return f"SecretsBox(keys={self.key_count})"  # never the keys themselves

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (url-safe ASCII) for ``plaintext``, under the first key."""
        if not isinstance(plaintext, str):
            raise TypeError("SecretsBox.encrypt takes a str")
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of ``token``; :class:`SecretDecryptionError` if it was altered or no key fits."""
        if not isinstance(token, str):
            raise TypeError("SecretsBox.decrypt takes a str")
        try:
            data = self._fernet.decrypt(token.encode("ascii"))
            return data.decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted (tampered or unknown key)"
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key (after a key rotation). Same errors as :meth:`decrypt`."""
        if not isinstance(token, str):
            raise TypeError("SecretsBox.rotate takes a str")
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted (tampered or unknown key)"
            ) from exc
