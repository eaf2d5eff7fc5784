#!/usr/bin/env python3
"""Independent cosign legacy signatures (simple signing, .sig tag) for interoperability tests.

Uses `cryptography` for ECDSA P-256/SHA-256 and plain HTTP (urllib) to the registry, per the cosign signature spec.

  cosign_sign.py push HOST REPO DIGEST KEY.pem   # signs DIGEST and pushes HOST/REPO:sha256-<hex>.sig
  cosign_sign.py verify PUB.pem PAYLOAD_FILE SIGNATURE_B64 DIGEST   # exit 0 when valid and bound to DIGEST
  cosign_sign.py keypair PREFIX [ec|ed25519|rsa] # unencrypted PKCS#8 PREFIX.pem and PREFIX.pub
"""
import base64
import hashlib
import json
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as resp:
        return resp.status, resp.headers, resp.read()


def push_blob(host, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = request("POST", f"http://{host}/v2/{repo}/blobs/uploads/", b"")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return {"mediaType": None, "digest": digest, "size": len(data)}


def push(host, repo, digest, key_file):
    key = serialization.load_pem_private_key(open(key_file, "rb").read(), password=None)
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": f"{host}/{repo}"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": {"signer": "python"},
    }).encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(payload)
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    signature = base64.b64encode(raw).decode()
    layer = push_blob(host, repo, payload)
    layer["mediaType"] = "application/vnd.dev.cosign.simplesigning.v1+json"
    layer["annotations"] = {"dev.cosignproject.cosign/signature": signature}
    config = json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
    cfg = push_blob(host, repo, config)
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [layer]}).encode()
    tag = digest.replace(":", "-") + ".sig"
    request("PUT", f"http://{host}/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})


def verify(pub_file, payload_file, signature_b64, digest):
    key = serialization.load_pem_public_key(open(pub_file, "rb").read())
    payload = open(payload_file, "rb").read()
    try:
        key.verify(base64.b64decode(signature_b64), payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        print("invalid signature", file=sys.stderr)
        sys.exit(1)
    doc = json.loads(payload)
    if doc["critical"]["image"]["docker-manifest-digest"] != digest or doc["critical"]["type"] != "cosign container image signature":
        print("payload not bound to " + digest, file=sys.stderr)
        sys.exit(2)
    print(doc["critical"]["identity"]["docker-reference"])


def keypair(prefix, kind="ec"):
    key = {
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }[kind]()
    open(prefix + ".pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(prefix + ".pub", "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


if __name__ == "__main__":
    {"push": push, "verify": verify, "keypair": keypair}[sys.argv[1]](*sys.argv[2:])
