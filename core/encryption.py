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

import base64
import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DecryptionError",
    "blind_index",
    "decrypt",
    "decrypt_bytes",
    "decrypt_many",
    "encrypt",
    "encrypt_bytes",
    "reencrypt",
]


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


@functools.lru_cache(maxsize=4)
def _raw_keys(keys: tuple[str, ...]) -> list[tuple[bytes, object]]:
    """Each key's HMAC signing key and an AES-128-ECB decryptor factory (Fernet's two halves of the key)."""
    raw = []
    for key in keys:
        material = base64.urlsafe_b64decode(key.encode())
        # ECB here is AES applied block by block, nothing more: decrypt_many chains the blocks as CBC itself.
        raw.append((material[:16], Cipher(algorithms.AES(material[16:]), modes.ECB())))  # noqa: S305
    return raw


def decrypt_many(tokens: list[str]) -> list[str | None]:
    """The texts of many tokens at once, each as `decrypt` would give it, or None for a token no key opens.

    For reading many values in one go (the tax reports decrypt a million identities): Fernet's own `decrypt` builds
    an HMAC and an AES-CBC object per token, about 20 µs in Python, most of a report's time. This checks each
    token exactly as Fernet does (version byte, then HMAC-SHA256 over version, timestamp, IV and ciphertext with the
    key's signing half, compared in constant time, before anything is decrypted), then decrypts every token opened
    by one key in a single AES-ECB pass and applies CBC's chaining itself (each plaintext block is the block cipher's
    output XOR the previous ciphertext block, the IV for the first), then strips the PKCS7 padding. The result is
    Fernet's (tests/core/test_encryption_many.py compares them, and tampered tokens are refused). No time-to-live is
    checked (neither does `decrypt`)."""
    results: list[str | None] = [None] * len(tokens)
    pending: list[list[tuple[int, bytes, bytes]]] = [[] for _key in settings.IDENTITY_KEYS]
    keys = _raw_keys(tuple(settings.IDENTITY_KEYS))
    for index, token in enumerate(tokens):
        if not token:
            results[index] = ""
            continue
        try:
            data = base64.urlsafe_b64decode(token)
        except (ValueError, TypeError):
            continue
        if len(data) < 73 or data[0] != 0x80 or (len(data) - 57) % 16:
            continue
        signed, tag = data[:-32], data[-32:]
        for number, (signing_key, _cipher) in enumerate(keys):
            if hmac.compare_digest(hmac.digest(signing_key, signed, "sha256"), tag):
                pending[number].append((index, data[9:25], data[25:-32]))
                break
    for (_signing_key, cipher), opened in zip(keys, pending, strict=True):
        if not opened:
            continue
        blocks = cipher.decryptor().update(b"".join(body for _index, _iv, body in opened))
        at = 0
        for index, iv, body in opened:
            size = len(body)
            chained = iv + body[:-16]
            plain = (int.from_bytes(blocks[at : at + size], "big") ^ int.from_bytes(chained, "big")).to_bytes(
                size, "big"
            )
            at += size
            pad = plain[-1]
            if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
                continue
            try:
                results[index] = plain[:-pad].decode()
            except UnicodeDecodeError:
                continue
    return results


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
