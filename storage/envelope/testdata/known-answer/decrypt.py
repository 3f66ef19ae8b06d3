#!/usr/bin/env python3
"""Decrypts the known-answer vectors in this directory using only the format
described in the envelope package documentation and the Python
`cryptography` package, as an independent check of that description.

    python3 decrypt.py    # prints one "ok" line per vector
"""
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HEADER, SEGMENT, TAG = 40, 65536, 16
FIRST_PT, PT = SEGMENT - TAG - HEADER, SEGMENT - TAG

data_key = bytes(range(32))
ad = b"blobs/sha256/known-answer"

for name, n in [("empty.bin", 0), ("one-byte.bin", 1), ("three-segments.bin", FIRST_PT + PT + 10)]:
    obj = open(name, "rb").read()
    assert obj[0] == HEADER
    salt, prefix = obj[1:33], obj[33:40]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=ad).derive(data_key)
    gcm = AESGCM(key)
    segments = 1 if n <= FIRST_PT else 1 + -(-(n - FIRST_PT) // PT)
    assert len(obj) == HEADER + n + TAG * segments
    plaintext = b""
    for i in range(segments):
        start = HEADER if i == 0 else i * SEGMENT
        end = min((i + 1) * SEGMENT, len(obj))
        last = b"\x01" if i == segments - 1 else b"\x00"
        plaintext += gcm.decrypt(prefix + struct.pack(">I", i) + last, obj[start:end], None)
    assert plaintext == bytes((i * 31 + 7) & 0xFF for i in range(n)), name
    print(name, "ok,", segments, "segment(s)")
