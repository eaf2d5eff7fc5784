#!/usr/bin/env python3
"""Pushes a synthetic estate to a registry over plain HTTP: REPOS repositories x TAGS tags, every image built on
one of two shared base layers plus its own layer, so that replication tools can show (or not) blob sharing.

  make_estate.py HOST REPOS TAGS BASE_MIB OWN_MIB
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Interop"))
import cosign_sign  # noqa: E402  (plain-HTTP registry helpers)


def push_blob(host, repo, data, media_type):
    blob = cosign_sign.push_blob(host, repo, data)
    blob["mediaType"] = media_type
    return blob


def main(host, repos, tags, base_mib, own_mib):
    layer = "application/vnd.oci.image.layer.v1.tar"
    bases = [os.urandom(int(float(base_mib) * 1048576)) for _ in range(2)]
    for r in range(int(repos)):
        repo = f"estate/app{r}"
        base = bases[r % 2]
        for t in range(int(tags)):
            layers = [push_blob(host, repo, base, layer), push_blob(host, repo, os.urandom(int(float(own_mib) * 1048576)), layer)]
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"n": f"{r}.{t}"}},
                                 "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode()
            cfg = push_blob(host, repo, config, "application/vnd.oci.image.config.v1+json")
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": cfg, "layers": layers}).encode()
            cosign_sign.request("PUT", f"http://{host}/v2/{repo}/manifests/1.{t}.0", manifest,
                    {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})


if __name__ == "__main__":
    main(*sys.argv[1:])
