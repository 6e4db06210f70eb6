"""``push``: upload an image from the local store to a registry.

Blobs first (skipped when the registry already has them), manifests last,
so the registry never holds a manifest whose blobs are missing. An index is
pushed with all its manifests, children before the index.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from lxcri_core.config import Config
from lxcri_core.errors import RegistryError
from lxcri_core.log import get_logger
from lxcri_core.media import INDEX_TYPES, Descriptor, Index, Manifest
from lxcri_core.progress import NullProgress, Progress
from lxcri_core.reference import parse_reference
from lxcri_core.registry.client import RegistryClient, connect, endpoint, repo_scope
from lxcri_core.store import Store
from lxcri_core.store.resolve import resolve

log = get_logger(__name__)


class _Counted:
    """A read-only file that reports bytes read to a Progress (for upload bars)."""

    def __init__(self, f: IO[bytes], size: int, key: str, progress: Progress) -> None:
        self._f, self.len, self._key, self._progress = f, size, key, progress

    def read(self, n: int = -1, /) -> bytes:
        data = self._f.read(n)
        self._progress.advance(self._key, len(data))
        return data


def _upload_blob(
    client: RegistryClient,
    store: Store,
    repository: str,
    desc: Descriptor,
    progress: Progress,
    scope: str,
) -> None:
    what = f"blob {desc.digest} for {client.ep.host}/{repository}"
    progress.start(desc.digest, desc.size, desc.digest.split(":", 1)[1][:12])
    head = client.request("HEAD", f"/v2/{repository}/blobs/{desc.digest}", scope=scope)
    head.close()
    if head.status_code == 200:
        progress.advance(desc.digest, desc.size)
        progress.finish(desc.digest)
        return
    resp = client.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope)
    client.check(resp, f"upload session for {what}", scope, (202,))
    location = resp.headers.get("Location", "")
    resp.close()
    if not location:
        raise RegistryError(f"registry {client.ep.host} started an upload without a Location")
    files: list[IO[bytes]] = []

    def body() -> _Counted:
        for f in files:
            f.close()
        files.append(store.open_blob(desc.digest))
        progress.start(desc.digest, desc.size, desc.digest.split(":", 1)[1][:12])
        return _Counted(files[-1], desc.size, desc.digest, progress)

    sep = "&" if "?" in location else "?"
    try:
        resp = client.request(
            "PUT",
            f"{client.url(location)}{sep}digest={desc.digest}",
            scope=scope,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(desc.size),
            },
            body=body,
        )
    finally:
        for f in files:
            f.close()
    client.check(resp, what, scope, (201, 204))
    resp.close()
    progress.finish(desc.digest)


def _put_manifest(
    client: RegistryClient, repository: str, target: str, data: bytes, mt: str, scope: str
) -> None:
    resp = client.request(
        "PUT",
        f"/v2/{repository}/manifests/{target}",
        scope=scope,
        headers={"Content-Type": mt},
        body=lambda: data,
    )
    client.check(resp, f"manifest {client.ep.host}/{repository}:{target}", scope, (201, 204))
    resp.close()


def _push_manifest(
    cfg: Config,
    client: RegistryClient,
    store: Store,
    repository: str,
    desc: Descriptor,
    target: str,
    progress: Progress,
    scope: str,
) -> None:
    data = store.read_blob(desc.digest)
    if desc.media_type in INDEX_TYPES:
        for child in Index.parse(data, desc.media_type).manifests:
            if not store.has_blob(child.digest):
                raise RegistryError(
                    f"cannot push index {desc.digest}: its manifest {child.digest} is not in"
                    " the store (it was pulled for one platform only)"
                )
            _push_manifest(cfg, client, store, repository, child, child.digest, progress, scope)
    else:
        man = Manifest.parse(data, desc.media_type)
        blobs = list({d.digest: d for d in (man.config, *man.layers)}.values())
        with ThreadPoolExecutor(max(1, min(cfg.parallel_downloads, len(blobs)))) as pool:
            for f in [
                pool.submit(_upload_blob, client, store, repository, b, progress, scope)
                for b in blobs
            ]:
                f.result()
    _put_manifest(client, repository, target, data, desc.media_type, scope)


def push(
    cfg: Config,
    src_ref: str,
    dest_ref: str,
    *,
    insecure: bool = False,
    creds_file: Path | None = None,
    progress: Progress | None = None,
) -> str:
    """Push the stored image ``src_ref`` to ``dest_ref``; return the manifest digest."""
    store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout)
    rec = resolve(store, src_ref)  # the forms every command takes
    dest = parse_reference(dest_ref)
    scope = repo_scope(dest.repository, "pull,push")
    prog = progress or NullProgress()
    ep = endpoint(cfg, dest.registry, insecure=insecure)
    pool = max(cfg.parallel_downloads + 2, 4)
    with (
        store.in_use(),
        connect(cfg, ep, dest.repository, creds_file=creds_file, pool_size=pool) as client,
    ):
        _push_manifest(
            cfg, client, store, dest.repository, rec.descriptor, dest.target, prog, scope
        )
    log.info("pushed", image=rec.name, destination=str(dest), digest=rec.descriptor.digest)
    return rec.descriptor.digest
