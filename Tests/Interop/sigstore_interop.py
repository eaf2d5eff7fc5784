#!/usr/bin/env python3
"""Independent DSSE / in-toto / sigstore-bundle implementations for interoperability tests.

Envelopes are made and checked with securesystemslib (dsse.Envelope, CryptoSigner), statements with
in-toto-attestation, bundles parsed with sigstore-protobuf-specs; certificates with `cryptography`; registry
writes with plain HTTP (urllib), per the cosign and OCI specs.

  sigstore_interop.py attest-push HOST REPO DIGEST KEY.pem PREDICATE_TYPE v1|v01   # .att layer, prints the envelope
  sigstore_interop.py dsse-verify PUB.pem ENVELOPE.json DIGEST                      # exit 0 when valid and bound
  sigstore_interop.py bundle-check BUNDLE.json DIGEST PUB.pem                       # parse + verify the DSSE inside
  sigstore_interop.py keyless HOST REPO DIGEST OUTDIR EMAIL ISSUER [expired]        # CA + leaf + Rekor SET bundle referrer
"""
import base64
import datetime
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cosign_sign import push_blob, request  # noqa: E402

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from google.protobuf import json_format
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
import in_toto_attestation.v1.statement_pb2 as spb
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey
from sigstore_protobuf_specs.dev.sigstore.bundle.v1 import Bundle

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def b64(b):
    return base64.b64encode(b).decode()


def put_manifest(host, repo, ref, manifest):
    request("PUT", f"http://{host}/v2/{repo}/manifests/{ref}", manifest, {"Content-Type": MANIFEST})


def statement_bytes(name, digest, predicate_type, version):
    algo, hexd = digest.split(":")
    predicate = {"builder": {"id": "https://python.example/builder"}, "buildType": "https://python.example/type"}
    if version == "v1":
        st = Statement([ResourceDescriptor(name=name, digest={algo: hexd}).pb], predicate_type, predicate)
        st.validate()
        return json_format.MessageToJson(st.pb, preserving_proto_field_name=False).encode()
    return json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"name": name, "digest": {algo: hexd}}],
                       "predicateType": predicate_type, "predicate": predicate}).encode()


def attest_push(host, repo, digest, key_file, predicate_type, version):
    key = serialization.load_pem_private_key(open(key_file, "rb").read(), password=None)
    signer = CryptoSigner(key)
    env = Envelope(statement_bytes(f"{host}/{repo}", digest, predicate_type, version), "application/vnd.in-toto+json", {})
    env.sign(signer)
    data = json.dumps(env.to_dict()).encode()
    layer = push_blob(host, repo, data)
    layer["mediaType"] = "application/vnd.dsse.envelope.v1+json"
    layer["annotations"] = {"dev.cosignproject.cosign/signature": "", "predicateType": predicate_type}
    config = json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
    cfg = push_blob(host, repo, config)
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": cfg, "layers": [layer]}).encode()
    put_manifest(host, repo, digest.replace(":", "-") + ".att", manifest)
    print(data.decode())


def verify_envelope(pub_file, env_dict, digest):
    pub = serialization.load_pem_public_key(open(pub_file, "rb").read())
    env = Envelope.from_dict(env_dict)
    keyids = {sig.keyid for sig in env.signatures.values()}
    base = SSlibKey.from_crypto(pub)
    # securesystemslib matches signatures to keys by keyid (cosign and Warden leave it empty): give the key each id.
    keys = [SSlibKey(k, base.keytype, base.scheme, base.keyval) for k in keyids]
    env.verify(keys, 1)  # raises VerificationError
    if env.payload_type != "application/vnd.in-toto+json":
        raise SystemExit("payload type " + env.payload_type)
    st = Statement.copy_from_pb(json_format.Parse(env.payload, spb.Statement()))
    st.validate()
    algo, hexd = digest.split(":")
    if not any(s.digest.get(algo) == hexd for s in st.pb.subject):
        print("statement not bound to " + digest, file=sys.stderr)
        sys.exit(2)
    print(st.pb.predicate_type)


def dsse_verify(pub_file, env_file, digest):
    try:
        verify_envelope(pub_file, json.load(open(env_file)), digest)
    except Exception as e:  # securesystemslib raises VerificationError
        print(f"invalid: {e}", file=sys.stderr)
        sys.exit(1)


def bundle_check(bundle_file, digest, pub_file):
    text = open(bundle_file).read()
    bundle = Bundle.from_dict(json.loads(text))
    if bundle.media_type != "application/vnd.dev.sigstore.bundle.v0.3+json":
        raise SystemExit("media type " + bundle.media_type)
    env = bundle.dsse_envelope
    if not env.signatures:
        raise SystemExit("no DSSE envelope")
    env_dict = {"payload": b64(env.payload), "payloadType": env.payload_type,
                "signatures": [{"keyid": s.keyid, "sig": b64(s.sig)} for s in env.signatures]}
    try:
        verify_envelope(pub_file, env_dict, digest)
    except Exception as e:
        print(f"invalid: {e}", file=sys.stderr)
        sys.exit(1)
    print("hint=" + bundle.verification_material.public_key.hint)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "interop.test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def der_utf8(s):
    b = s.encode()
    assert len(b) < 128
    return bytes([0x0C, len(b)]) + b


def keyless(host, repo, digest, outdir, email, issuer, expired=""):
    now = datetime.datetime.now(datetime.timezone.utc)
    # Certificates valid for ten minutes, like Fulcio's; "expired" puts that window two hours in the past.
    start = now - datetime.timedelta(hours=2) if expired else now - datetime.timedelta(minutes=1)
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = (x509.CertificateBuilder().subject_name(name("root")).issuer_name(name("root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA384()))
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = (x509.CertificateBuilder().subject_name(name("intermediate")).issuer_name(root.subject)
             .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=180))
             .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
             .sign(root_key, hashes.SHA384()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(inter.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(minutes=10))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), der_utf8(issuer)), critical=False)
            .sign(inter_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    open(os.path.join(outdir, "ca.pem"), "wb").write(pem(root) + pem(inter))

    # Sign the image manifest (message signature), as `cosign sign` with a certificate does in bundle form.
    _, _, manifest = request("GET", f"http://{host}/v2/{repo}/manifests/{digest}", None, {"Accept": MANIFEST})
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest
    sig = leaf_key.sign(manifest, ec.ECDSA(hashes.SHA256()))

    # A Rekor-like log: hashedrekord body, signed entry timestamp over the canonical JSON Rekor signs.
    rekor_key = ec.generate_private_key(ec.SECP256R1())
    rekor_der = rekor_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    open(os.path.join(outdir, "rekor.pub"), "wb").write(rekor_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    body = json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(manifest).hexdigest()}},
        "signature": {"content": b64(sig), "publicKey": {"content": b64(pem(leaf))}}}}, separators=(",", ":")).encode()
    integrated = int((start + datetime.timedelta(seconds=30)).timestamp())
    log_id = hashlib.sha256(rekor_der).digest()
    set_payload = json.dumps({"body": b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": 42},
                             sort_keys=True, separators=(",", ":")).encode()
    set_sig = rekor_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))

    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [{"logIndex": "42", "logId": {"keyId": b64(log_id)}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                             "integratedTime": str(integrated), "inclusionPromise": {"signedEntryTimestamp": b64(set_sig)},
                             "canonicalizedBody": b64(body)}],
        },
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(manifest).digest())},
                             "signature": b64(sig)},
    }
    Bundle.from_dict(bundle)  # the bundle is well-formed per the protobuf specs
    trusted_root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{"baseUrl": "https://rekor.interop.test", "hashAlgorithm": "SHA2_256",
                   "publicKey": {"rawBytes": b64(rekor_der), "keyDetails": "PKIX_ECDSA_P256_SHA_256"}, "logId": {"keyId": b64(log_id)}}],
        "certificateAuthorities": [{"uri": "https://fulcio.interop.test", "certChain": {"certificates": [
            {"rawBytes": b64(inter.public_bytes(serialization.Encoding.DER))},
            {"rawBytes": b64(root.public_bytes(serialization.Encoding.DER))}]}}],
    }
    json.dump(trusted_root, open(os.path.join(outdir, "trusted_root.json"), "w"))

    # Push as a referrer; the registry has no referrers API, so also write the fallback index (OCI 1.1).
    data = json.dumps(bundle).encode()
    layer = push_blob(host, repo, data)
    layer["mediaType"] = bundle["mediaType"]
    empty = push_blob(host, repo, b"{}")
    empty["mediaType"] = "application/vnd.oci.empty.v1+json"
    annotations = {"dev.sigstore.bundle.content": "message-signature", "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"}
    referrer = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": bundle["mediaType"], "config": empty,
                           "layers": [layer], "subject": {"mediaType": MANIFEST, "digest": digest, "size": len(manifest)},
                           "annotations": annotations}).encode()
    ref_digest = "sha256:" + hashlib.sha256(referrer).hexdigest()
    put_manifest(host, repo, ref_digest, referrer)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": MANIFEST, "digest": ref_digest, "size": len(referrer), "artifactType": bundle["mediaType"], "annotations": annotations}]}).encode()
    request("PUT", f"http://{host}/v2/{repo}/manifests/{digest.replace(':', '-')}", index,
            {"Content-Type": "application/vnd.oci.image.index.v1+json"})
    print(ref_digest)


if __name__ == "__main__":
    {"attest-push": attest_push, "dsse-verify": dsse_verify, "bundle-check": bundle_check, "keyless": keyless}[sys.argv[1]](*sys.argv[2:])
