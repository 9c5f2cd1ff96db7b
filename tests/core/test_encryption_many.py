"""core.encryption.decrypt_many: the same texts as Fernet's decrypt, for many tokens at once, under several keys,
and nothing for a token no key opens (tampered, cut, another key, not a token)."""

import base64

from cryptography.fernet import Fernet

from core.encryption import decrypt, decrypt_many, encrypt

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_many_tokens_open_as_fernet_opens_them(settings):
    settings.IDENTITY_KEYS = [NEW_KEY, OLD_KEY]
    texts = ["", "王芳", "11010519491231002X", "x" * 15, "y" * 16, "z" * 17, "Åsa Ölund-Smith", "🙂" * 40]
    tokens = [encrypt(text) for text in texts]
    tokens += [Fernet(OLD_KEY.encode()).encrypt(text.encode()).decode() for text in texts if text]
    assert decrypt_many(tokens) == [decrypt(token) for token in tokens] == texts + [text for text in texts if text]


def test_a_token_no_key_opens_gives_none(settings):
    settings.IDENTITY_KEYS = [NEW_KEY]
    good = encrypt("王芳")
    raw = bytearray(base64.urlsafe_b64decode(good))
    raw[30] ^= 1  # a ciphertext bit flipped: the HMAC no longer matches
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    foreign = Fernet(OLD_KEY.encode()).encrypt(b"secret").decode()
    cut = good[:-8]
    assert decrypt_many([tampered, foreign, cut, "not a token", good]) == [None, None, None, None, "王芳"]
