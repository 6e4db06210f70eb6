"""The pve-api backend against the Proxmox simulator over HTTPS (its own CA): real CTs.

The image comes from lxcri's own store (imported, as a pull would leave it);
the backend exports it, uploads it to the node's vztmpl storage and creates
the CT from it; the simulator runs the CT with LXC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxcri_pve.backends.pve_api import PveApiBackend

from lxcri_core.backend import CreateRequest, CtRef, ExecOptions, open_backend
from lxcri_core.config import Config, load_config
from lxcri_core.errors import BackendError, ContainerNotFound
from lxcri_core.images import import_image
from lxcri_core.spec.options import RunOptions
from tests.pvesim.fixtures import NODE, PveSim, pvesim
from tests.support.images import busybox_image, write_layout

__all__ = ["pvesim"]

IMAGE = "registry.test/lxcri/web:1"
WEB = busybox_image(
    Entrypoint=["/bin/httpd", "-f", "-p", "80", "-h", "/www"],
    Cmd=[],
    Env=["PATH=/bin", "GREETING=hello world"],
    StopSignal="SIGKILL",
)


def _cfg(sim: PveSim, **over: Any) -> Config:
    env = {
        k: v for k, v in sim.env.items() if k.startswith("LXCRI_") and k not in ("LXCRI_PVE_ROOT",)
    }
    env.update({k: v for k, v in os.environ.items() if k in ("LXCRI_ROOT", "LXCRI_CONFIG")})
    cfg = load_config(env=env)
    return dataclasses.replace(cfg, pve_bridge=sim.bridge, **over)


@pytest.fixture
def web_image(tmp_path: Path) -> str:
    cfg = load_config()
    write_layout(tmp_path / "layout", WEB, "1")
    import_image(cfg, tmp_path / "layout", IMAGE)
    return IMAGE


@pytest.fixture
def backend(pvesim: PveSim, web_image: str) -> Iterator[PveApiBackend]:
    yield PveApiBackend(_cfg(pvesim), environ={})


def _req(sim: PveSim, host: int, **opts: Any) -> CreateRequest:
    ip = sim.ip(host)
    options = RunOptions(name="web", ip=f"{ip}/24", gateway=sim.gateway, **opts)
    return CreateRequest(image=IMAGE, options=options, pull="never")


def _reqs(sim: PveSim, since: int = 0) -> list[dict[str, Any]]:
    return sim.requests()[since:]


# -- end to end -------------------------------------------------------------------------


@pytest.mark.slow
def test_run_list_config_stop_destroy(pvesim: PveSim, backend: PveApiBackend) -> None:
    ct = backend.create(_req(pvesim, 20, memory="64m"))
    assert ct.backend == "pve-api" and ct.node == NODE and ct.name == "web"
    created = [
        r for r in pvesim.requests() if r["method"] == "POST" and r["path"] == f"/nodes/{NODE}/lxc"
    ]
    assert len(created) == 1
    p = created[0]["params"]
    assert p["ostemplate"].startswith("local:vztmpl/lxcri-web-1-") and p["ostemplate"].endswith(
        ".tar"
    )
    assert p["unprivileged"] == "1" and "lxcri" in p["tags"].split(";")
    assert p["memory"] == "64" and p["rootfs"] == "local:8"
    assert "GREETING=hello world" in p["env"].split("\0")
    assert f"bridge={pvesim.bridge}" in p["net0"]
    # the rootfs was built by PVE from the uploaded archive, on the node's storage
    tmpl = (
        pvesim.dir / "storage" / "local" / "template" / "cache" / p["ostemplate"].split("/", 1)[1]
    )
    assert tmpl.is_file()
    volume = pvesim.dir / "storage" / "local" / "images" / str(ct.vmid)
    assert (volume / f"subvol-{ct.vmid}-disk-0.subvol" / "bin" / "httpd").exists()

    backend.start(CtRef(str(ct.vmid)))
    assert pvesim.lxc_state(ct.vmid) == "RUNNING"
    import urllib.request

    from tests.support.lxcenv import wait_for

    def page() -> str | None:
        try:
            with urllib.request.urlopen(f"http://{pvesim.ip(20)}/index.html", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return None

    assert "hello from lxcri" in wait_for(page, what="the CT's httpd")

    backend.reboot(CtRef("web"))
    assert pvesim.lxc_state(ct.vmid) == "RUNNING"
    reboots = [r for r in pvesim.requests() if r["path"].endswith("/status/reboot")]
    assert len(reboots) == 1

    # list: one request for the whole cluster, the configs (image) once
    backend.list()
    before = len(pvesim.requests())
    listed = backend.list()
    after = _reqs(pvesim, before)
    assert [(r["method"], r["path"]) for r in after] == [("GET", "/cluster/resources")]
    assert [s.image for s in listed if s.vmid == ct.vmid] == [IMAGE]
    mine = [s for s in listed if s.vmid == ct.vmid]
    assert mine and mine[0].status == "running" and mine[0].name == "web"
    assert "lxcri" in mine[0].tags and mine[0].node == NODE

    st = backend.status(CtRef("web"))
    assert st.vmid == ct.vmid and st.image == IMAGE and st.image_digest.startswith("sha256:")
    assert st.ipv4 == pvesim.ip(20)

    conf = backend.config_get(CtRef(str(ct.vmid)))
    assert conf["hostname"] == "web" and conf["memory"] == 64
    backend.config_set(CtRef(str(ct.vmid)), {"memory": "128", "description": None})
    conf = backend.config_get(CtRef(str(ct.vmid)))
    assert conf["memory"] == 128 and "description" not in conf

    # what the API cannot do names the local path
    with pytest.raises(BackendError, match=rf"pct exec {ct.vmid} -- CMD.*--backend pve-local"):
        backend.exec_command(CtRef("web"), ["true"], ExecOptions())
    with pytest.raises(BackendError, match="not available through the Proxmox API"):
        next(iter(backend.logs(CtRef("web"))))

    backend.stop(CtRef(str(ct.vmid)), timeout=2)
    assert pvesim.lxc_state(ct.vmid) == "STOPPED"
    assert backend.status(CtRef(str(ct.vmid))).status == "exited"

    backend.remove(CtRef(str(ct.vmid)))
    assert not volume.exists()
    assert not (pvesim.dir / "etc-pve" / "nodes" / NODE / "lxc" / f"{ct.vmid}.conf").exists()
    with pytest.raises(ContainerNotFound):
        backend.status(CtRef(str(ct.vmid)))


@pytest.mark.slow
def test_second_create_reuses_the_upload_and_open_backend_finds_it(
    pvesim: PveSim, web_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in pvesim.env.items():
        if k.startswith("LXCRI_PVE_") and k != "LXCRI_PVE_ROOT":
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("LXCRI_PVE_BRIDGE", pvesim.bridge)
    be = open_backend(load_config(), "pve-api")
    assert be.name == "pve-api"
    a = be.create(_req(pvesim, 21))
    b = be.create(dataclasses.replace(_req(pvesim, 22), options=RunOptions(name="web2")))
    uploads = [r for r in pvesim.requests() if r["path"].endswith("/upload")]
    assert len(uploads) == 1
    # names are unique, as docker's: a ref by name must find one CT
    with pytest.raises(BackendError, match=f"named web already exists \\(CT {a.vmid}\\)"):
        be.create(_req(pvesim, 23))
    assert b.vmid != a.vmid
    for ct in (a, b):
        be.remove(CtRef(str(ct.vmid)))


# -- what a token may not do ---------------------------------------------------------------


def test_ports_hookscript_and_raw_keys_are_refused_before_anything_is_sent(
    pvesim: PveSim, backend: PveApiBackend
) -> None:
    cases = [
        (_req(pvesim, 23, publish=("8080:80",)), "publishing ports"),
        (_req(pvesim, 23, tmpfs=("/tmp",)), "lxc.mount.entry"),
        (_req(pvesim, 23, ulimits=("nofile=10:20",)), "lxc.prlimit"),
        (_req(pvesim, 23, volumes=("/etc:/host-etc",)), "bind mount"),
        (_req(pvesim, 23, health_cmd="true"), "healthcheck"),
        (
            dataclasses.replace(_req(pvesim, 23), pct={"hookscript": "local:snippets/x"}),
            "hookscript",
        ),
        (dataclasses.replace(_req(pvesim, 23), pct={"lxc.apparmor.profile": "x"}), "raw LXC"),
    ]
    for req, needle in cases:
        with pytest.raises(BackendError) as e:
            backend.create(req)
        msg = str(e.value)
        assert needle in msg and "--backend pve-local" in msg and "\n" not in msg, msg
    writes = [r for r in pvesim.requests() if r["method"] != "GET"]
    assert writes == []
    with pytest.raises(BackendError, match=r"hookscript.*--backend pve-local"):
        backend.config_set(CtRef("100"), {"hookscript": "local:snippets/x"})


def test_unknown_ct_and_bad_pct_values(pvesim: PveSim, backend: PveApiBackend) -> None:
    with pytest.raises(ContainerNotFound):
        backend.exec_command(CtRef("99999999"), ["true"], ExecOptions())
    with pytest.raises(ContainerNotFound):
        backend.status(CtRef("no-such-name"))
    # a newline would be a config line of its own: refused before it is sent
    with pytest.raises(BackendError, match="control character"):
        backend.config_set(CtRef("100"), {"hostname": "x\nlxc.apparmor.profile: unconfined"})
    with pytest.raises(BackendError, match="not a Proxmox container property"):
        backend.config_set(CtRef("100"), {"a/../b": "1"})
    assert [r for r in pvesim.requests() if r["method"] != "GET"] == []


def test_server_text_reaches_the_terminal_as_one_printable_line() -> None:
    from lxcri_pve.backends.pve_api_client import checked_node, one_line

    assert one_line("a\x1b]0;owned\x07b\nc\x9bd") == "a ]0;owned b c d"
    assert checked_node("pve-1") == "pve-1"
    with pytest.raises(BackendError, match="not a node name"):
        checked_node("../access")


@pytest.mark.slow
def test_task_timeout_names_the_task(pvesim: PveSim, backend: PveApiBackend) -> None:
    backend.task_timeout = 0
    msg = _one_line_error(lambda: backend.create(_req(pvesim, 28)))
    assert "did not end within 0 s on node pve1 (task UPID:pve1:" in msg
    backend.task_timeout = 120
    deadline = time.monotonic() + 60
    # the create task goes on; it ends with the config written and unlocked
    while time.monotonic() < deadline and not any(
        s.name == "web" and not s.lock for s in backend.list()
    ):
        time.sleep(0.2)
    backend.remove(CtRef("web"), force=True)


# -- errors: one clear line each -----------------------------------------------------------


def _one_line_error(fn: Any) -> str:
    with pytest.raises(BackendError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_bad_token_is_401(pvesim: PveSim, tmp_path: Path, web_image: str) -> None:
    bad = tmp_path / "token"
    user = pvesim.token.split("=", 1)[0]
    bad.write_text(f"{user}=00000000-0000-0000-0000-000000000000\n")
    bad.chmod(0o600)
    be = PveApiBackend(_cfg(pvesim, pve_token_file=bad), environ={})
    msg = _one_line_error(be.list)
    assert "401" in msg and "refused the credentials" in msg and str(bad) in msg


def test_token_lacking_privilege_is_403(pvesim: PveSim, backend: PveApiBackend) -> None:
    ct = backend.create(_req(pvesim, 24))
    try:
        # feature flags other than nesting are root@pam's: PVE answers 403
        msg = _one_line_error(
            lambda: backend.config_set(CtRef(str(ct.vmid)), {"features": "fuse=1"})
        )
        assert "403" in msg and "lacks the privilege" in msg and "pve-local" in msg
    finally:
        backend.remove(CtRef(str(ct.vmid)), force=True)


def test_offline_node(pvesim: PveSim, web_image: str) -> None:
    be = PveApiBackend(_cfg(pvesim, pve_node="pve2"), environ={})
    msg = _one_line_error(lambda: be.create(_req(pvesim, 25)))
    assert msg.startswith("node pve2 is offline")
    # an unknown node is named too
    be = PveApiBackend(_cfg(pvesim, pve_node="nosuch"), environ={})
    assert "not in the cluster" in _one_line_error(lambda: be.create(_req(pvesim, 25)))


@pytest.mark.slow
def test_failed_task_carries_its_log(pvesim: PveSim, backend: PveApiBackend) -> None:
    be = PveApiBackend(_cfg(pvesim, pve_storage="nosuch"), environ={})
    msg = _one_line_error(lambda: be.create(_req(pvesim, 26)))
    assert msg.startswith("creating CT ") and "failed on node pve1" in msg
    assert "storage 'nosuch' does not exist" in msg
    # a start whose hookscript refuses (set by root on the node): its output is in the error
    ct = backend.create(_req(pvesim, 26))
    hook = pvesim.add_snippet(
        "refuse", '#!/bin/sh\necho "hook says $2"\n[ "$2" = pre-start ] && exit 1\nexit 0\n'
    )
    assert pvesim.pct("set", str(ct.vmid), "--hookscript", hook).returncode == 0
    msg = _one_line_error(lambda: backend.start(CtRef(str(ct.vmid))))
    assert msg.startswith(f"start of CT {ct.vmid} failed on node pve1: ")
    assert "(task log: " in msg and "hook says pre-start" in msg
    backend.remove(CtRef(str(ct.vmid)), force=True)


def test_bad_ca_and_no_ca(pvesim: PveSim, tmp_path: Path, web_image: str) -> None:
    other = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other",
         "-keyout", str(tmp_path / "k.pem"), "-out", str(other), "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    for ca in (other, None):
        be = PveApiBackend(_cfg(pvesim, pve_ca_file=ca), environ={})
        msg = _one_line_error(be.list)
        assert "TLS verification" in msg and "pve_ca_file" in msg, msg
    # turning verification off is possible, and explicit
    be = PveApiBackend(_cfg(pvesim, pve_ca_file=None, pve_verify_tls=False), environ={})
    be.list()


def test_connection_refused(pvesim: PveSim, web_image: str) -> None:
    from tests.pvesim.fixtures import free_port

    be = PveApiBackend(_cfg(pvesim, pve_url=f"https://127.0.0.1:{free_port()}"), environ={})
    msg = _one_line_error(be.list)
    assert "connection refused" in msg and "pve_url" in msg


def test_token_file_open_to_all_is_refused(pvesim: PveSim, tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text(pvesim.token + "\n")
    f.chmod(0o644)
    msg = _one_line_error(lambda: PveApiBackend(_cfg(pvesim, pve_token_file=f), environ={}))
    assert "chmod 600" in msg and pvesim.token.split("=", 1)[1] not in msg


def test_password_and_env_token(
    pvesim: PveSim, web_image: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _cfg(pvesim, pve_token_file=None)
    caplog.set_level(logging.DEBUG)
    for name in ("proxmoxer", "urllib3", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    password = pvesim.root_password()
    PveApiBackend(cfg, environ={"LXCRI_PVE_PASSWORD": password}).list()
    pwfile = tmp_path / "pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    assert load_config(env={"LXCRI_PVE_PASSWORD_FILE": str(pwfile)}).pve_password_file == pwfile
    PveApiBackend(dataclasses.replace(cfg, pve_password_file=pwfile), environ={}).list()
    # another user: the ticket request names it, and PVE refuses its password
    other = dataclasses.replace(cfg, pve_user="alice@pve", pve_password_file=pwfile)
    msg = _one_line_error(PveApiBackend(other, environ={}).list)
    assert "401" in msg and "alice@pve" in msg and password not in msg
    assert caplog.records and all(password not in r.getMessage() for r in caplog.records)
    PveApiBackend(cfg, environ={"LXCRI_PVE_TOKEN": pvesim.token}).list()
    be = PveApiBackend(cfg, environ={"LXCRI_PVE_PASSWORD": "wrong"})
    msg = _one_line_error(be.list)
    assert "401" in msg and "root@pam" in msg and "wrong" not in msg
    assert "no Proxmox credentials" in _one_line_error(lambda: PveApiBackend(cfg, environ={}))


# -- the secret stays secret ---------------------------------------------------------------


@pytest.mark.slow
def test_token_never_in_logs_or_argv(
    pvesim: PveSim, backend: PveApiBackend, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from lxcri_core.log import setup_logging

    secret = pvesim.token.split("=", 1)[1]
    setup_logging("debug", json=True)
    caplog.set_level(logging.DEBUG)
    for name in ("proxmoxer", "urllib3", "requests"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):
                        seen.append(
                            Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                        )
            time.sleep(0.05)

    t = threading.Thread(target=watch)
    t.start()
    try:
        ct = backend.create(_req(pvesim, 27))
        backend.start(CtRef(str(ct.vmid)))
        backend.list()
        with pytest.raises(BackendError):
            backend.exec_command(CtRef(str(ct.vmid)), ["true"], ExecOptions())
        backend.remove(CtRef(str(ct.vmid)), force=True)
    finally:
        done.set()
        t.join()
    out, err = capfd.readouterr()
    assert secret not in out and secret not in err
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert seen and all(secret not in c for c in seen)
    assert secret not in (pvesim.dir / "requests.jsonl").read_text()
    assert secret not in repr(backend.api.creds)
    assert json.dumps([r.getMessage() for r in caplog.records])  # something was logged


@pytest.mark.slow
def test_authenticated_pull_of_a_docker_schema2_image(
    pvesim: PveSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lxcri pulls (with its own registry login), PVE never sees the registry or its password;
    Docker media types are converted on export, so PVE's OCI path takes the image."""
    from tests.support.registry import start_registry, write_authfile

    user, password = "alice", "pve-api-secret-7"
    # docker-registry reads REGISTRY_* variables as settings: REGISTRY_AUTH_FILE is not one
    with monkeypatch.context() as m:
        m.delenv("REGISTRY_AUTH_FILE", raising=False)
        reg = start_registry(tmp_path / "reg", users={user: password})
    try:
        skopeo_auth = write_authfile(tmp_path / "skopeo-auth.json", reg.addr, user, password)
        from tests.support.registry import push_image

        push_image(
            reg.addr, WEB, "private/web:2", tmp_path, authfile=skopeo_auth, docker_format=True
        )
        write_authfile(Path(os.environ["LXCRI_AUTH_FILE"]), reg.addr, user, password)
        cfg = _cfg(pvesim).with_overrides(insecure_registries=(reg.addr,))
        be = PveApiBackend(cfg, environ={})
        ref = f"{reg.addr}/private/web:2"
        opts = RunOptions(name="pulled", ip=f"{pvesim.ip(29)}/24", gateway=pvesim.gateway)
        ct = be.create(CreateRequest(image=ref, options=opts))
        conf = be.config_get(CtRef(str(ct.vmid)))
        from lxcri_core.spec.pve_entrypoint import lxc_init_cmd_argv

        argv = ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]
        assert lxc_init_cmd_argv(conf["entrypoint"]) == argv
        assert "GREETING=hello world" in conf["env"].split("\0")
        # PVE skips layers of Docker media types: the layer is there, so it was converted
        rootfs = pvesim.dir / "storage" / "local" / "images" / str(ct.vmid)
        assert (rootfs / f"subvol-{ct.vmid}-disk-0.subvol" / "bin" / "httpd").exists()
        log = (pvesim.dir / "requests.jsonl").read_text()
        assert password not in log and "oci-registry-pull" not in log
        st = be.status(CtRef("pulled"))
        assert st.image == ref
        be.remove(CtRef(str(ct.vmid)))
    finally:
        reg.stop()


def test_upload_is_streamed_from_disk(
    pvesim: PveSim, backend: PveApiBackend, tmp_path: Path
) -> None:
    """An image archive is not held in memory on its way to PVE (nor refused over 2 GiB)."""
    import hashlib
    import tracemalloc

    big = tmp_path / "big.tar"
    with open(big, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(1 << 20))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    tracemalloc.start()
    try:
        upid = backend.api.upload(
            f"nodes/{NODE}/storage/local/upload",
            "uploading",
            {"content": "vztmpl", "checksum": digest, "checksum-algorithm": "sha256"},
            "lxcri-big.tar",
            big,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    backend.api.wait_task(upid, "uploading", 60)
    assert peak < 8 << 20, f"peak {peak >> 20} MiB"
    stored = pvesim.dir / "storage" / "local" / "template" / "cache" / "lxcri-big.tar"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    # a wrong checksum fails the task, with PVE's words
    msg = _one_line_error(
        lambda: backend.api.wait_task(
            backend.api.upload(
                f"nodes/{NODE}/storage/local/upload",
                "uploading",
                {"content": "vztmpl", "checksum": "0" * 64, "checksum-algorithm": "sha256"},
                "lxcri-big2.tar",
                big,
            ),
            "uploading lxcri-big2.tar",
            60,
        )
    )
    assert "uploading lxcri-big2.tar failed" in msg and "checksum mismatch" in msg


def test_labels_given_at_create_are_in_the_status(pvesim: PveSim, backend: PveApiBackend) -> None:
    # auto-update selects containers by the label lxcri.auto-update=registry
    labels = ("lxcri.auto-update=registry", "note=two\nlines")
    ct = backend.create(_req(pvesim, 24, labels=labels))
    want = {"lxcri.auto-update": "registry", "note": "two\nlines"}
    assert backend.status(CtRef(str(ct.vmid))).labels == want
    assert {s.vmid: s.labels for s in backend.list()}[ct.vmid] == want
    # the user's own description lines do not make labels
    backend.config_set(CtRef(str(ct.vmid)), {"description": "mine\nlxcri labels {bad"})
    assert backend.status(CtRef(str(ct.vmid))).labels == {}
