"""Encryption of personal data at rest (issue #24: a member's legal name and ID number), and its blind index.

`cryptography`'s Fernet (AES-128-CBC with an HMAC-SHA256 tag, a maintained library) under `MultiFernet`, with the
keys from the environment: `IDENTITY_KEYS="newest,older,…"`. The first key encrypts; every key listed decrypts, so
reads keep working while rows are re-encrypted after a rotation (`manage.py identity_reencrypt`), after which the
old key can be dropped from the list. docs/privacy.md has the procedure.

The blind index is an HMAC-SHA256 of the normalised value under a separate key (`IDENTITY_INDEX_KEY`): equal
numbers give equal indexes, so the database can refuse one ID for two members (a unique constraint) without ever
holding the number; without the key the index cannot be reversed by trying every ID number. It is not rotated with
the encryption keys (a new index key would need every number decrypted and indexed again, which
`identity_reencrypt --reindex` does).
"""

import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["DecryptionError", "blind_index", "decrypt", "decrypt_bytes", "encrypt", "encrypt_bytes", "reencrypt"]


class DecryptionError(Exception):
    """A stored value cannot be read with any key in IDENTITY_KEYS (a key was dropped too early, or tampering)."""


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("IDENTITY_KEYS is empty: set it to one or more Fernet keys, newest first.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "IDENTITY_KEYS holds a key that is not a Fernet key (32 bytes, url-safe base64; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
        ) from error


def _keys() -> MultiFernet:
    return _fernet(tuple(settings.IDENTITY_KEYS))


def encrypt(text: str) -> str:
    """The text encrypted with the newest key, as an ASCII token; "" stays "" (nothing to hide)."""
    if not text:
        return ""
    return _keys().encrypt(text.encode()).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _keys().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise DecryptionError("no key in IDENTITY_KEYS opens this value") from None


def encrypt_bytes(data: bytes) -> bytes:
    """`data` encrypted with the newest key (a Fernet token, ASCII bytes): for files holding personal data, such as
    the tax reports' (staff.tax_reports), stored in pieces of a few MB each."""
    return _keys().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    try:
        return _keys().decrypt(bytes(token))
    except InvalidToken:
        raise DecryptionError("no key in IDENTITY_KEYS opens this value") from None


def encrypted_with_newest(token: str) -> bool:
    """Whether the newest key alone opens the token (so re-encrypting it would change nothing but the IV)."""
    if not token:
        return True
    try:
        Fernet(settings.IDENTITY_KEYS[0].encode()).decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def reencrypt(token: str) -> str:
    """The same text encrypted with the newest key (MultiFernet.rotate); "" stays ""."""
    if not token:
        return ""
    try:
        return _keys().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("no key in IDENTITY_KEYS opens this value") from None


def blind_index(value: str) -> str:
    """HMAC-SHA256 of `value` under IDENTITY_INDEX_KEY, hex: for equality look-ups and uniqueness only."""
    key = settings.IDENTITY_INDEX_KEY
    if not key:
        raise ImproperlyConfigured("IDENTITY_INDEX_KEY is empty: set it to a long random string.")
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
