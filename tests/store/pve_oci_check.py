"""Proxmox VE 9.1's checks of an OCI archive, as a test oracle (no PVE here to ask).

Sources (read with the search tool; PVE itself is not installable here):

- pve-container ``src/PVE/API2/LXC.pm``, ``create_vm``: an ``ostemplate``
  whose path matches ``/\\.tar$/`` is listed with ``tar -tf``; it is an OCI
  image only if a line equals ``oci-layout``, a line equals ``index.json``
  and a line matches ``^blobs/``. Otherwise it is restored as a plain rootfs
  tarball. Then ``PVE::RS::OCI::parse_and_extract_image($archivepath,
  $rootdir)`` runs (pve-rs ``pve_rs_oci``, arch ``None``; newer code may pass
  the node's arch).
- proxmox-rs ``proxmox-oci/src/oci_tar_image.rs``, ``OciTarImage::new``: the
  file is read with the ``tar`` crate, uncompressed and seekable; entries are
  indexed by their exact path; no entry ``index.json`` -> "Missing
  index.json file"; ``ImageIndex::from_reader`` (oci-spec) parses it.
  ``image_manifest(arch)``: the **first** descriptor whose media type is
  ``application/vnd.oci.image.manifest.v1+json`` and, given an arch, whose
  platform is absent or has that architecture; none -> "Unsupported CPU
  architecture". Blobs are looked up at ``blobs/<algorithm>/<hex>``; the
  manifest blob missing -> "Image manifest with digest ... is missing".
- ``proxmox-oci/src/lib.rs``, ``parse_image``: config media type must be
  ``application/vnd.oci.image.config.v1+json`` ("Wrong media type"), its
  blob present ("Missing image config") and an ``ImageConfiguration``
  (architecture, os, rootfs). ``build_layer_map``: layers of the OCI layer
  types (tar, tar+gzip, tar+zstd and their non-distributable forms) are
  decompressed and hashed; any other type (the Docker ones) is skipped.
  ``extract_image_rootfs``: every ``rootfs.diff_ids`` entry must be such a
  layer's uncompressed digest ("Unknown layer digest {0} found in
  rootfs.diff_ids") and its blob present ("Layer file ... is missing").

PVE does not verify blob digests or sizes; this checker does (skopeo and
umoci do), and requires diff_ids and layers to agree one to one and in order
(PVE would leave a layer without a diff_id out of the rootfs, silently).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import IO, Any, Protocol

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
#: The layer types proxmox-oci extracts, and how each is compressed.
PVE_LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "none",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
}
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


class Rejected(AssertionError):
    """The archive fails one of PVE's checks (or ours): the message says which."""


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _sha256(f: _Readable) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def _uncompressed_digest(f: IO[bytes], compression: str) -> str:
    if compression == "gzip":
        with gzip.GzipFile(fileobj=f) as g:
            return _sha256(g)
    if compression == "zstd":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(f) as z:
            return _sha256(z)
    return _sha256(f)


def _descriptor(d: Any, what: str) -> dict[str, Any]:
    """oci-spec's Descriptor: mediaType, a valid digest and a size are required."""
    if not isinstance(d, dict):
        raise Rejected(f"{what} is not a JSON object")
    if not isinstance(d.get("mediaType"), str):
        raise Rejected(f"{what} has no mediaType")
    if not isinstance(d.get("digest"), str) or not _DIGEST.fullmatch(d["digest"]):
        raise Rejected(f"{what} has no valid sha256 digest: {d.get('digest')!r}")
    if not isinstance(d.get("size"), int) or d["size"] < 0:
        raise Rejected(f"{what} has no valid size")
    return d


class PveOciArchive:
    """An opened archive; ``check()`` runs every check and returns the chosen manifest."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _detect(self) -> None:
        """PVE's detection, with GNU tar as PVE runs it: lines compared literally."""
        proc = subprocess.run(["tar", "-tf", str(self.path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Rejected(f"tar -tf fails: {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        for want in ("oci-layout", "index.json"):
            if want not in lines:
                raise Rejected(
                    f"not detected as an OCI archive: no entry named exactly {want!r} "
                    f"(tar -tf: {lines[:5]}...)"
                )
        if not any(re.match(r"blobs/", line) for line in lines):
            raise Rejected("not detected as an OCI archive: no entry under blobs/")

    def _members(self, tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
        names = [m.name for m in tar.getmembers()]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise Rejected(f"duplicate entries (PVE keeps the last one): {dups}")
        return {m.name: m for m in tar.getmembers()}

    def _blob(
        self, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], desc: dict[str, Any]
    ) -> tarfile.TarInfo:
        algo, hexd = desc["digest"].split(":", 1)
        name = f"blobs/{algo}/{hexd}"
        m = members.get(name)
        if m is None:
            raise Rejected(f"blob {desc['digest']} ({desc['mediaType']}) is missing from {name}")
        if not m.isreg():
            raise Rejected(f"blob {name} is not a regular file")
        if m.size != desc["size"]:
            raise Rejected(f"blob {name} is {m.size} bytes, its descriptor says {desc['size']}")
        f = tar.extractfile(m)
        assert f is not None
        if _sha256(f) != desc["digest"]:
            raise Rejected(f"blob {name} does not match its digest")
        return m

    def _json(self, tar: tarfile.TarFile, m: tarfile.TarInfo, what: str) -> dict[str, Any]:
        f = tar.extractfile(m)
        if f is None:
            raise Rejected(f"{what} is not a regular file")
        try:
            doc = json.load(f)
        except ValueError as e:
            raise Rejected(f"{what} is not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise Rejected(f"{what} is not a JSON object")
        return doc

    def check(self, arch: str | None = None) -> dict[str, Any]:
        """Run the checks; return the index, its chosen entry, the manifest and the config."""
        if not self.path.name.endswith(".tar"):
            raise Rejected(f"{self.path.name}: PVE takes an OCI archive only from a *.tar file")
        with open(self.path, "rb") as raw:
            head = raw.read(4)
        if head[:2] == b"\x1f\x8b" or head == b"\x28\xb5\x2f\xfd":
            raise Rejected("the archive is compressed; PVE reads a plain tar")
        self._detect()
        try:
            tar = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed by the with below
        except tarfile.TarError as e:
            raise Rejected(f"not a plain tar: {e}") from None
        with tar:
            members = self._members(tar)
            if not members["index.json"].isreg():
                raise Rejected("index.json is not a regular file")
            index = self._json(tar, members["index.json"], "index.json")
            if index.get("schemaVersion") != 2:
                raise Rejected(f"index.json schemaVersion is {index.get('schemaVersion')!r}")
            mans = index.get("manifests")
            if not isinstance(mans, list):
                raise Rejected("index.json has no manifests list")
            descs = [_descriptor(d, f"index.json manifests[{i}]") for i, d in enumerate(mans)]
            entry = next(
                (
                    d
                    for d in descs
                    if d["mediaType"] == OCI_MANIFEST
                    and (
                        arch is None
                        or not isinstance(d.get("platform"), dict)
                        or d["platform"].get("architecture") == arch
                    )
                ),
                None,
            )
            if entry is None:
                types = [d["mediaType"] for d in descs]
                raise Rejected(
                    f"index.json has no entry of type {OCI_MANIFEST}"
                    + (f" for {arch}" if arch else "")
                    + f" (it has {types}): PVE says 'Unsupported CPU architecture'"
                )
            manifest = self._json(tar, self._blob(tar, members, entry), "the manifest")
            if manifest.get("schemaVersion") != 2:
                raise Rejected(f"manifest schemaVersion is {manifest.get('schemaVersion')!r}")
            if manifest.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
                raise Rejected(f"manifest mediaType is {manifest['mediaType']!r}")
            cdesc = _descriptor(manifest.get("config"), "manifest config")
            if cdesc["mediaType"] != OCI_CONFIG:
                raise Rejected(
                    f"config media type is {cdesc['mediaType']!r}, not {OCI_CONFIG}: "
                    "PVE says 'Wrong media type'"
                )
            config = self._json(tar, self._blob(tar, members, cdesc), "the config")
            for key in ("architecture", "os"):
                if not isinstance(config.get(key), str) or not config[key]:
                    raise Rejected(f"config has no {key}")
            rootfs = config.get("rootfs")
            if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
                raise Rejected("config rootfs is not {type: layers, ...}")
            diff_ids = rootfs.get("diff_ids")
            if not isinstance(diff_ids, list):
                raise Rejected("config has no rootfs.diff_ids list")
            layers = manifest.get("layers")
            if not isinstance(layers, list):
                raise Rejected("manifest has no layers list")
            ldescs = [_descriptor(la, f"layer {i}") for i, la in enumerate(layers)]
            for i, la in enumerate(ldescs):
                if la["mediaType"] not in PVE_LAYER_TYPES:
                    raise Rejected(
                        f"layer {i} has media type {la['mediaType']!r}, which PVE skips: "
                        "its diff_id is then an 'Unknown layer digest'"
                    )
            if len(diff_ids) != len(ldescs):
                raise Rejected(f"{len(diff_ids)} diff_ids for {len(ldescs)} layers")
            for i, (la, diff_id) in enumerate(zip(ldescs, diff_ids, strict=True)):
                m = self._blob(tar, members, la)
                f = tar.extractfile(m)
                assert f is not None
                got = _uncompressed_digest(f, PVE_LAYER_TYPES[la["mediaType"]])
                if got != diff_id:
                    raise Rejected(
                        f"layer {i} uncompresses to {got}, the config's diff_id is {diff_id}"
                    )
            return {"index": index, "entry": entry, "manifest": manifest, "config": config}


def check_pve_oci(path: Path, arch: str | None = None) -> dict[str, Any]:
    """Raise ``Rejected`` unless PVE 9.1 would create a CT from ``path``."""
    return PveOciArchive(path).check(arch)
