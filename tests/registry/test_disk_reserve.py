"""A hostile registry declaring a 10 GiB layer and streaming zeros: the pull stops
at the ``unpack_min_free`` reserve with one error line, removes the partial
download, and the filesystem keeps its reserve (LXCRI_ROOT on a 64 MiB tmpfs)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lxcri_core.store import Store
from tests.conftest import run_lxcri
from tests.support.lxcenv import make_dir

pytestmark = pytest.mark.slow

ZEROS = bytes(1 << 16)
LAYER = "sha256:" + "ab" * 32  # never matches: the bytes are zeros
#: A layer that fits above the reserve of the 64 MiB filesystem when its download
#: starts; after its first 8 MiB another writer takes 20 MiB there.
FITTING = "sha256:" + "cd" * 32


def _blob(doc: dict[str, object]) -> tuple[bytes, str]:
    data = json.dumps(doc).encode()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _image(layers: dict[str, int]) -> dict[str, tuple[bytes, str]]:
    """The manifest and config of an image of ``layers`` (digest: declared size)."""
    config = _blob(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": list(layers)},
            "config": {"Cmd": ["true"]},
        }
    )
    manifest = _blob(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config[1],
                "size": len(config[0]),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n}
                for d, n in layers.items()
            ],
        }
    )
    return {"manifest": manifest, "config": config}


#: repository: (image, layer sizes)
IMAGES = {
    "evil/huge": (_image({LAYER: 10 << 30}), {LAYER: 10 << 30}),
    "evil/fitting": (_image({FITTING: 40 << 20}), {FITTING: 40 << 20}),
}


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Where "another writer" puts 20 MiB once a layer has streamed 8 MiB.
    fill: Path | None = None
    sent = 0  # bytes of the layer streamed, over all requests

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, body: bytes, ctype: str = "application/json", digest: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v2":
            self._reply(b"{}")
            return
        repo = self.path[len("/v2/") :].split("/manifests/")[0].split("/blobs/")[0]
        if repo not in IMAGES:
            self.send_error(404)
            return
        image, layers = IMAGES[repo]
        digest = self.path.rsplit("/", 1)[-1]
        if "/manifests/" in self.path:
            body, d = image["manifest"]
            self._reply(body, "application/vnd.oci.image.manifest.v1+json", d)
        elif digest == image["config"][1]:
            self._reply(image["config"][0])
        elif digest in layers:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(layers[digest]))
            self.end_headers()
            sent = 0
            try:
                while sent < layers[digest]:
                    self.wfile.write(ZEROS)
                    sent += len(ZEROS)
                    if sent == 8 << 20 and self.fill is not None:
                        self.fill.write_bytes(bytes(20 << 20))
            except OSError:
                return  # the client stopped reading
        else:
            self.send_error(404)


@pytest.fixture
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def small_root() -> Iterator[Path]:
    mnt = make_dir(mode=0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mnt)], check=True
    )
    try:
        yield mnt / "root"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)


@pytest.mark.parametrize(
    ("repo", "blob"),
    [("evil/huge", LAYER), ("evil/fitting", FITTING)],
    ids=["declared-10-GiB", "filled-meanwhile"],
)
def test_a_layer_stops_at_the_reserve_and_leaves_no_partial(
    hostile: str,
    small_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo: str,
    blob: str,
) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text("unpack_min_free: 16M\nparallel_downloads: 4\n")
    env = {"LXCRI_ROOT": str(small_root), "LXCRI_CONFIG": str(conf)}
    monkeypatch.setattr(_Hostile, "fill", small_root.parent / "other-writer")
    p = run_lxcri("pull", "--insecure", f"{hostile}/{repo}:1", env=env, timeout=120)
    assert p.returncode == 1, p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert f"blob {blob} refused" in lines[0], lines[0]
    assert "below the 16.0 MiB it must keep (unpack_min_free = 16M)" in lines[0]
    st = os.statvfs(small_root)
    assert st.f_bavail * st.f_frsize >= 16 << 20
    store = Store(small_root / "images")
    assert not list(store.tmp_dir.glob("*.partial"))
    assert not store.images()


def test_an_archive_import_keeps_the_reserve_too(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lxcri_core.config import load_config
    from lxcri_core.errors import StoreError
    from lxcri_core.images import import_image
    from tests.support.images import Entry, Image, Layer, make_tar, write_layout

    big = Layer(make_tar([Entry("big", data=bytes(40 << 20))]), compression="none")
    write_layout(tmp_path / "layout", Image([big], {"Cmd": ["true"]}))
    conf = tmp_path / "config.yaml"
    conf.write_text("unpack_min_free: 32M\n")
    monkeypatch.setenv("LXCRI_ROOT", str(small_root))
    monkeypatch.setenv("LXCRI_CONFIG", str(conf))
    with pytest.raises(StoreError, match=r"refused: .* below the 32.0 MiB it must keep"):
        import_image(load_config(), tmp_path / "layout", "localhost/big:1")
    store = Store(small_root / "images")
    assert not list(store.tmp_dir.glob("*.partial")) and not store.images()
    assert not list(store.blobs_dir.iterdir())
