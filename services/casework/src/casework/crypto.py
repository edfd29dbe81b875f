"""Personal data at rest: envelope encryption with AES-GCM, and a keyed hash for lookups.

Each participant gets their own random data key. Their personal fields, notes and
employers' names are sealed with it; the data key itself is stored only wrapped (AES-GCM) under the
master key from `CASEWORK_DATA_KEY`, with the master key's id beside it so the
master key can be rotated (`casework rotate-key`). Erasure deletes the wrapped
data key: what was sealed with it can never be read again (crypto-shredding), even
from a backup that still holds the ciphertext.

Identity numbers are also stored as an HMAC-SHA256 under a key derived from the
master key, so a duplicate can be found without decrypting every row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def _derive(master: bytes, purpose: bytes) -> bytes:
    """A separate key per purpose, so the master key is never used twice for different things."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def decode_key(value: str, name: str) -> bytes:
    """The 32 bytes of a base64 key; a ValueError naming the setting otherwise."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{name} must be base64") from e
    if len(key) != 32:
        raise ValueError(f"{name} must decode to 32 bytes, not {len(key)}")
    return key


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    wrapped: bytes


class Vault:
    """Seals and opens personal data; holds the master keys and nothing else."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"no master key with id {current!r}")
        self.current = current
        self._wrap = {kid: AESGCM(_derive(k, b"casework data-key wrap v1"))
                      for kid, k in keys.items()}
        self._hash = {kid: _derive(k, b"casework identity hash v1") for kid, k in keys.items()}

    @classmethod
    def from_settings(
        cls, key: str | None, key_id: str, previous: dict[str, str] | None = None
    ) -> Vault:
        if not key:
            raise ValueError(
                "CASEWORK_DATA_KEY is not set: base64 of 32 random bytes, kept secret"
            )
        keys = {kid: decode_key(v, f"CASEWORK_PREVIOUS_DATA_KEYS[{kid}]")
                for kid, v in (previous or {}).items()}
        keys[key_id] = decode_key(key, "CASEWORK_DATA_KEY")
        return cls(keys, key_id)

    # --- data keys ---------------------------------------------------------------------

    def new_data_key(self, participant_id: UUID) -> tuple[bytes, WrappedKey]:
        """A fresh data key for one participant, and the form it is stored in."""
        data_key = AESGCM.generate_key(bit_length=256)
        return data_key, self.wrap(participant_id, data_key)

    def wrap(self, participant_id: UUID, data_key: bytes) -> WrappedKey:
        nonce = os.urandom(_NONCE)
        aad = participant_id.bytes + self.current.encode()
        sealed = self._wrap[self.current].encrypt(nonce, data_key, aad)
        return WrappedKey(self.current, nonce + sealed)

    def unwrap(self, participant_id: UUID, key: WrappedKey) -> bytes:
        aead = self._wrap.get(key.key_id)
        if aead is None:
            raise KeyError(f"master key {key.key_id!r} is not configured")
        aad = participant_id.bytes + key.key_id.encode()
        return aead.decrypt(key.wrapped[:_NONCE], key.wrapped[_NONCE:], aad)

    # --- sealed documents --------------------------------------------------------------

    @staticmethod
    def seal(data_key: bytes, participant_id: UUID, purpose: str, document: Any,
             context: bytes = b"") -> bytes:
        """AES-GCM over the JSON of `document`, bound to the participant, the purpose and
        `context` (what else it belongs to: a note's id and flag, an employment's id)."""
        nonce = os.urandom(_NONCE)
        aad = participant_id.bytes + purpose.encode() + context
        return nonce + AESGCM(data_key).encrypt(nonce, orjson.dumps(document), aad)

    @staticmethod
    def open(data_key: bytes, participant_id: UUID, purpose: str, blob: bytes,
             context: bytes = b"") -> Any:
        """The document; `cryptography.exceptions.InvalidTag` when anything it is bound to
        differs from when it was sealed."""
        aad = participant_id.bytes + purpose.encode() + context
        return orjson.loads(AESGCM(data_key).decrypt(blob[:_NONCE], blob[_NONCE:], aad))

    # --- lookups -----------------------------------------------------------------------

    def identity_hash(self, normalized: str, key_id: str | None = None) -> bytes:
        """HMAC-SHA256 of a normalized identity number under the current (or named) key."""
        return hmac.new(self._hash[key_id or self.current], normalized.encode(),
                        hashlib.sha256).digest()

    def identity_hashes(self, normalized: str) -> list[bytes]:
        """The hash under every configured key: finds rows not yet moved to the current key."""
        return [self.identity_hash(normalized, kid) for kid in self._hash]
