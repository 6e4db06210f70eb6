"""What a reference names at its registry now, without downloading the image."""

from __future__ import annotations

from lxcri_core.config import Config
from lxcri_core.digest import is_digest
from lxcri_core.media import ACCEPT_MANIFESTS
from lxcri_core.reference import parse_reference
from lxcri_core.registry.client import connect, endpoint, repo_scope


def remote_digest(cfg: Config, ref: str, *, insecure: bool = False) -> str:
    """The digest ``ref``'s tag points at in its registry: one HEAD of the manifest
    (what the registry answers for the tag: an index's digest for a multi-platform
    image); a registry that does not say gets a GET of the manifest, never a blob."""
    from lxcri_core.registry.pull import fetch_manifest

    r = parse_reference(ref)
    if is_digest(r.target):
        return r.target
    scope = repo_scope(r.repository)
    with connect(cfg, endpoint(cfg, r.registry, insecure=insecure), r.repository) as client:
        resp = client.request(
            "HEAD",
            f"/v2/{r.repository}/manifests/{r.target}",
            scope=scope,
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        client.check(resp, f"manifest {r.registry}/{r.repository}:{r.target}", scope, (200,))
        announced = resp.headers.get("Docker-Content-Digest", "")
        if is_digest(announced):
            return announced
        return fetch_manifest(client, r.repository, r.target, scope)[2]
