"""``pull``: fetch an image from a registry into the local store.

Order matters for crash safety: every blob (layers, config) is downloaded
and verified first, then the manifest blob is stored, and only then is the
name tagged in ``index.json``. A pull killed at any point leaves verified
blobs and resumable partials, never a name pointing at missing content.
Parallel pulls of one image share the store's per-blob locks, so each blob
is downloaded once.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxcri_core.config import Config
from lxcri_core.digest import is_digest, sha256_bytes
from lxcri_core.errors import DigestMismatch, LxcriError, PlatformError, RegistryError
from lxcri_core.log import get_logger
from lxcri_core.media import (
    ACCEPT_MANIFESTS,
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    load_json,
    sniff_media_type,
)
from lxcri_core.platforms import host_platform, select_manifest
from lxcri_core.progress import NullProgress, Progress
from lxcri_core.reference import Reference, parse_reference
from lxcri_core.registry.body import MAX_MANIFEST, BodyTooLarge, iter_body, read_capped
from lxcri_core.registry.client import (
    BACKOFF,
    MAX_ATTEMPTS,
    RegistryClient,
    connect,
    endpoints,
    repo_scope,
)
from lxcri_core.store import BlobWriter, ImageRecord, Store

log = get_logger(__name__)

#: Annotation on a tagged manifest pulled through an index: the index's digest.
INDEX_ANNOTATION = "io.lxcri.index.digest"
#: Read size for blob bodies: a dropped connection loses at most the chunk in
#: flight (urllib3 discards a short read), so keep it well under a layer's size.
READ_CHUNK = 128 << 10
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def fetch_manifest(
    client: RegistryClient, repository: str, target: str, scope: str
) -> tuple[bytes, str, str]:
    """GET a manifest or index by tag or digest: (bytes, media type, verified digest)."""
    what = f"manifest {client.ep.host}/{repository}{'@' if is_digest(target) else ':'}{target}"
    resp = client.request(
        "GET",
        f"/v2/{repository}/manifests/{target}",
        scope=scope,
        headers={"Accept": ACCEPT_MANIFESTS},
    )
    client.check(resp, what, scope, (200,))
    data = read_capped(resp, MAX_MANIFEST, what)
    mt = sniff_media_type(data, resp.headers.get("Content-Type", ""))
    if mt not in (*MANIFEST_TYPES, *INDEX_TYPES):
        raise RegistryError(
            f"{what} has unsupported media type {mt!r} (only OCI and Docker schema 2 images)"
        )
    digest = sha256_bytes(data)
    announced = target if is_digest(target) else resp.headers.get("Docker-Content-Digest", "")
    if is_digest(announced) and announced != digest:
        raise DigestMismatch(f"{what} does not match its digest {announced} (got {digest})")
    return data, mt, digest


def _label(desc: Descriptor) -> str:
    return desc.digest.split(":", 1)[1][:12]


def _stream_into(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    w: BlobWriter,
    progress: Progress,
    scope: str,
) -> None:
    """Fill ``w`` from the registry, resuming with Range after a dropped connection."""
    import requests
    import urllib3

    what = f"blob {desc.digest} of {client.ep.host}/{repository}"
    failures = 0
    while True:
        progress.start(desc.digest, desc.size, _label(desc))
        progress.advance(desc.digest, w.offset)
        if w.offset == desc.size:
            return  # a complete partial: commit verifies it
        headers = {"Accept-Encoding": "identity"}
        if w.offset:
            headers["Range"] = f"bytes={w.offset}-"
        resp = client.request(
            "GET",
            f"/v2/{repository}/blobs/{desc.digest}",
            scope=scope,
            headers=headers,
        )
        if resp.status_code == 416 and w.offset:
            resp.close()
            w.reset()
            continue
        client.check(resp, what, scope, (200, 206))
        if resp.status_code == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != w.offset:
                resp.close()
                w.reset()  # a range we did not ask for: start over
                continue
            log.info("resuming blob download", blob=desc.digest, offset=w.offset)
        elif w.offset:
            w.reset()  # the server ignored Range and sends it all
            progress.start(desc.digest, desc.size, _label(desc))
        try:
            # never more than the descriptor's size: a registry sending more is cut off
            # there, not written until the disk fills
            for chunk in iter_body(resp, desc.size - w.offset, what, READ_CHUNK):
                w.write(chunk)
                progress.advance(desc.digest, len(chunk))
        except BodyTooLarge:
            raise DigestMismatch(
                f"it is longer than the {desc.size} bytes its descriptor gives"
            ) from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise RegistryError(
                    f"download of {what} was interrupted {failures} times ({e});"
                    " run the pull again to resume"
                ) from None
            log.info("blob download interrupted, resuming", blob=desc.digest, error=str(e))
            time.sleep(BACKOFF * 2**failures)
            continue
        finally:
            resp.close()
        if w.offset < desc.size:
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise RegistryError(f"download of {what} keeps ending early; run the pull again")
            continue
        return


def download_blob(
    client: RegistryClient,
    store: Store,
    repository: str,
    desc: Descriptor,
    progress: Progress,
    scope: str,
) -> None:
    """Make ``desc``'s blob present in the store, verified against its digest and size."""
    fresh = False
    while True:
        resumed = False
        try:
            with store.blob_writer(desc.digest, desc.size) as w:
                if w is not None:
                    resumed = w.offset > 0
                    _stream_into(client, repository, desc, w, progress, scope)
            break
        except DigestMismatch as e:
            # A partial left by an earlier run may itself be bad: one fresh try.
            if resumed and not fresh:
                fresh = True
                log.warning(
                    "resumed blob failed verification, downloading afresh", blob=desc.digest
                )
                continue
            raise DigestMismatch(
                f"blob {desc.digest} from {client.ep.host}/{repository} is corrupt: {e};"
                " it was discarded"
            ) from None
    progress.finish(desc.digest)


def download_blobs(
    cfg: Config,
    client: RegistryClient,
    store: Store,
    repository: str,
    descs: list[Descriptor],
    progress: Progress,
    scope: str,
) -> None:
    """Download ``descs`` with ``cfg.parallel_downloads`` workers; the first error wins."""
    unique = list({d.digest: d for d in descs}.values())
    # Big layers first: the longest transfer starts earliest.
    unique.sort(key=lambda d: -d.size)
    workers = max(1, min(cfg.parallel_downloads, len(unique)))
    if workers == 1:
        for d in unique:
            download_blob(client, store, repository, d, progress, scope)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="lxcri-pull") as pool:
        futures = [
            pool.submit(download_blob, client, store, repository, d, progress, scope)
            for d in unique
        ]
        try:
            for f in futures:
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _config_platform(store: Store, config: Descriptor) -> Platform | None:
    try:
        doc = load_json(store.read_blob(config.digest), "image config")
    except LxcriError:
        return None
    if doc.get("os") and doc.get("architecture"):
        return Platform.from_json(doc)
    return None


def _resolve(
    cfg: Config,
    ref: Reference,
    insecure: bool,
    creds_file: Path | None,
) -> tuple[RegistryClient, bytes, str, str]:
    """The first endpoint (mirrors, then the registry) that serves the manifest."""
    scope = repo_scope(ref.repository)
    eps = endpoints(cfg, ref.registry, insecure=insecure)
    pool = max(cfg.parallel_downloads + 2, 4)
    for i, ep in enumerate(eps):
        last = i == len(eps) - 1
        client: RegistryClient | None = None
        try:
            client = connect(cfg, ep, ref.repository, creds_file=creds_file, pool_size=pool)
            data, mt, digest = fetch_manifest(client, ref.repository, ref.target, scope)
            return client, data, mt, digest
        except RegistryError as e:
            if client is not None:
                client.close()
            if last:
                raise
            log.warning("mirror failed, trying the next", mirror=ep.host, error=str(e))
    raise AssertionError("unreachable: the registry itself is always the last endpoint")


def pull(
    cfg: Config,
    ref: str,
    *,
    platform: str | None = None,
    insecure: bool = False,
    creds_file: Path | None = None,
    progress: Progress | None = None,
) -> ImageRecord:
    """Pull ``ref`` (tag or digest) into the store and name it ``str(parse_reference(ref))``.

    From an index, the manifest for ``platform`` (default: the host's) is
    chosen; the index blob is stored too and named by an annotation. Each
    pull is counted (with its duration, and whether it failed) for the
    exporter in the state root's metrics counters.
    """
    r = parse_reference(ref)
    start = time.monotonic()
    ok = False
    try:
        rec = _pull(cfg, r, platform, insecure, creds_file, progress)
        ok = True
        return rec
    finally:
        from lxcri_core.metrics import counters

        counters.record(cfg.root, "pull", r.registry, time.monotonic() - start, ok)


def _pull(
    cfg: Config,
    r: Reference,
    platform: str | None,
    insecure: bool,
    creds_file: Path | None,
    progress: Progress | None,
) -> ImageRecord:
    name = str(r)
    want = Platform.parse(platform) if platform else host_platform()
    prog = progress or NullProgress()
    scope = repo_scope(r.repository)
    store = Store(
        cfg.image_store, lock_timeout=cfg.lock_timeout, min_free=cfg.unpack_min_free
    ).init()
    with store.in_use():
        client, data, mt, digest = _resolve(cfg, r, insecure, creds_file)
        with client:
            annotations: dict[str, str] = {}
            plat: Platform | None = None
            if mt in INDEX_TYPES:
                index = Index.parse(data, mt)
                store.put_bytes(data, digest)
                chosen = select_manifest(index, want, f"image index {name}")
                annotations[INDEX_ANNOTATION] = digest
                plat = chosen.platform
                data, mt, digest = fetch_manifest(client, r.repository, chosen.digest, scope)
                if mt not in MANIFEST_TYPES:
                    raise RegistryError(f"{name}: index entry {chosen.digest} is not a manifest")
            manifest = Manifest.parse(data, mt)
            download_blobs(
                cfg, client, store, r.repository, [manifest.config, *manifest.layers], prog, scope
            )
        if plat is None:
            plat = _config_platform(store, manifest.config)
            if platform and plat and (plat.os, plat.architecture) != (want.os, want.architecture):
                # a single-platform image: --platform is a promise it cannot keep
                raise PlatformError(f"{name} is a {plat} image only; it has no {want} variant")
        store.put_bytes(data, digest)
        desc = Descriptor(mt, digest, len(data), annotations, plat)
        store.tag(name, desc)
    log.info("pulled", image=name, digest=digest)
    return store.lookup(name)
