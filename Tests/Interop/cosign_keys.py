#!/usr/bin/env python3
"""Independent cosign key-file implementation for interoperability tests.

Uses `cryptography` (ECDSA P-256, PKCS#8, PKIX), `pynacl` (libsodium's crypto_secretbox) and `hashlib.scrypt`.

  cosign_keys.py write PREFIX N      # password from WARDEN_PASSWORD; writes PREFIX.key and PREFIX.pub
  cosign_keys.py read KEYFILE        # password from WARDEN_PASSWORD; prints the public key PEM
  cosign_keys.py seal KEYHEX NONCEHEX MSGHEX   # prints tag||ciphertext as hex (secretbox oracle)
Exit code 3 on a wrong password.
"""
import base64
import hashlib
import json
import os
import sys

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


def scrypt(password, salt, n, r, p):
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024)


def pem(label, data):
    b64 = base64.b64encode(data).decode()
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def write(prefix, n):
    password = os.environ.get("WARDEN_PASSWORD", "").encode()
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt = os.urandom(32)
    nonce = os.urandom(24)
    sealed = nacl.secret.SecretBox(scrypt(password, salt, n, 8, 1)).encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    with open(prefix + ".key", "w") as f:
        f.write(pem(LABELS[0], json.dumps(doc).encode()))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(prefix + ".pub", "wb") as f:
        f.write(pub)


def read(path):
    password = os.environ.get("WARDEN_PASSWORD", "").encode()
    text = open(path).read()
    lines = [l.strip() for l in text.splitlines()]
    begin = next(i for i, l in enumerate(lines) if l.startswith("-----BEGIN "))
    label = lines[begin][11:-5]
    assert label in LABELS, f"unexpected PEM label {label}"
    end = lines.index(f"-----END {label}-----")
    doc = json.loads(base64.b64decode("".join(lines[begin + 1:end])))
    params = doc["kdf"]["params"]
    derived = scrypt(password, base64.b64decode(doc["kdf"]["salt"]), params["N"], params["r"], params["p"])
    try:
        der = nacl.secret.SecretBox(derived).decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
    except nacl.exceptions.CryptoError:
        print("wrong password", file=sys.stderr)
        sys.exit(3)
    key = serialization.load_der_private_key(der, password=None)
    sys.stdout.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def seal(key_hex, nonce_hex, msg_hex):
    box = nacl.secret.SecretBox(bytes.fromhex(key_hex))
    print(box.encrypt(bytes.fromhex(msg_hex), bytes.fromhex(nonce_hex)).ciphertext.hex())


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], int(sys.argv[3]))
    elif cmd == "read":
        read(sys.argv[2])
    elif cmd == "seal":
        seal(*sys.argv[2:5])
    else:
        sys.exit(f"unknown command {cmd}")
