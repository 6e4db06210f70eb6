"""The simulator's HTTPS API through proxmoxer 2.2.0 (API token, TLS verified with DIR/ca.pem)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import AuthenticationError, ResourceException

from tests.pvesim.fixtures import NODE, PveSim, oci_archive, pvesim
from tests.support.images import busybox_image

__all__ = ["pvesim"]

NOT_IN_SCHEMA = (
    "property is not defined in schema and the schema does not allow additional properties"
)


def _err(fn) -> ResourceException:
    with pytest.raises(ResourceException) as ei:
        fn()
    return ei.value


def test_schema_errors_are_pve_400(pvesim: PveSim) -> None:
    lxc = pvesim.api().nodes(NODE).lxc
    e = _err(
        lambda: lxc.post(
            vmid=pvesim.first_vmid,
            ostemplate="local:vztmpl/x.tar",
            bogus=1,
            memory="lots",
            unprivileged="yes",
            arch="sparc",
            net0="name=eth0,bridge=vmbr0,colour=red",
        )
    )
    assert e.status_code == 400
    assert e.content == "Parameter verification failed."
    assert e.errors == {
        "bogus": NOT_IN_SCHEMA,
        "memory": "type check ('integer') failed - got 'lots'",
        "unprivileged": "type check ('boolean') failed - got 'yes'",
        "arch": "value 'sparc' does not have a value in the enumeration "
        "'amd64, i386, arm64, armhf, riscv32, riscv64'",
        "net0": "invalid format - format error\nnet0.colour: " + NOT_IN_SCHEMA + "\n",
    }
    e = _err(lambda: lxc.post(vmid=99, ostemplate="local:vztmpl/x.tar"))
    # pve-vmid's format check runs before the minimum, as in JSONSchema.pm.
    assert e.errors == {"vmid": "invalid format - value does not look like a valid VM ID\n"}
    e = _err(lambda: lxc.post(vmid=100, ostemplate="local:vztmpl/x.tar", memory=8))
    assert e.errors == {"memory": "value must have a minimum value of 16"}
    e = _err(lambda: lxc.post(ostemplate="local:vztmpl/x.tar"))
    assert e.errors == {"vmid": "property is missing and it is not optional"}
    # Raw lxc.* keys are not API parameters at all: refused for every API user.
    e = _err(lambda: lxc.post(vmid=pvesim.first_vmid, ostemplate="t", **{"lxc.init.cmd": "/x"}))
    assert e.errors == {"lxc.init.cmd": NOT_IN_SCHEMA}
    e = _err(lambda: pvesim.api().nodes(NODE).lxc(pvesim.first_vmid).status.start.post(fast=1))
    assert e.errors == {"fast": NOT_IN_SCHEMA}
    assert not list((pvesim.dir / "etc-pve" / "nodes" / NODE / "lxc").iterdir())


def test_unknown_method_is_501(pvesim: PveSim) -> None:
    api = pvesim.api()
    e = _err(lambda: api.nodes(NODE).lxc(100).config.post(memory=256))
    assert e.status_code == 501
    assert "not implemented" in e.content


def _make_ct(pvesim: PveSim, vmid: int) -> None:
    tmpl = pvesim.add_template("bb.tar", busybox_image())
    res = pvesim.pct("create", str(vmid), tmpl, "--hostname", "t1", "--memory", "64")
    assert res.returncode == 0, res.stderr


def test_token_may_not_set_root_only_options(pvesim: PveSim) -> None:
    vmid = pvesim.vmid()
    _make_ct(pvesim, vmid)
    api = pvesim.api()
    ct = api.nodes(NODE).lxc(vmid)
    snippet = pvesim.add_snippet("hook", "#!/bin/sh\nexit 0\n")
    e = _err(lambda: ct.config.put(hookscript=snippet))
    assert e.status_code == 403
    assert e.content == (
        "Permission check failed (changing the hookscript is only allowed for root@pam)"
    )
    e = _err(lambda: ct.config.put(mp0="/etc,mp=/hostetc"))
    assert e.status_code == 403
    assert "mount point type bind is only allowed for root@pam" in e.content
    e = _err(lambda: ct.config.put(features="keyctl=1"))
    assert e.status_code == 403
    e = _err(
        lambda: api.nodes(NODE).lxc.post(
            vmid=vmid + 1, ostemplate="local:vztmpl/bb.tar", hookscript=snippet
        )
    )
    assert e.status_code == 403
    conf = (pvesim.dir / "etc-pve" / "lxc" / f"{vmid}.conf").read_text()
    assert "hookscript" not in conf and "mp0" not in conf
    # What a token may change goes through, and the digest guards concurrent edits.
    cfg = ct.config.get()
    ct.config.put(memory=256, tags="lxcri", digest=cfg["digest"])
    cfg2 = ct.config.get()
    assert cfg2["memory"] == 256 and cfg2["tags"] == "lxcri"
    e = _err(lambda: ct.config.put(memory=128, digest=cfg["digest"]))
    assert e.status_code == 500 and "detected modified configuration" in e.content


def test_root_ticket_may_set_hookscript_and_needs_csrf(pvesim: PveSim) -> None:
    vmid = pvesim.vmid()
    _make_ct(pvesim, vmid)
    snippet = pvesim.add_snippet("hook", "#!/bin/sh\nexit 0\n")
    root = ProxmoxAPI(
        "127.0.0.1",
        port=pvesim.port,
        user="root@pam",
        password=pvesim.root_password(),
        verify_ssl=str(pvesim.ca),
    )
    root.nodes(NODE).lxc(vmid).config.put(hookscript=snippet)
    assert root.nodes(NODE).lxc(vmid).config.get()["hookscript"] == snippet
    # The ticket cookie alone does not authorise a write.
    ticket = root._store["session"].auth.pve_auth_ticket
    r = requests.put(
        f"{pvesim.url}/api2/json/nodes/{NODE}/lxc/{vmid}/config",
        data={"memory": "99"},
        cookies={"PVEAuthCookie": ticket},
        verify=str(pvesim.ca),
    )
    assert r.status_code == 401
    r = requests.post(
        f"{pvesim.url}/api2/json/access/ticket",
        data={"username": "root@pam", "password": "wrong"},
        verify=str(pvesim.ca),
    )
    assert r.status_code == 401 and r.json()["data"] is None
    logged = [q for q in pvesim.requests() if q["path"] == "/access/ticket"]
    assert logged and all(q["params"]["password"] == "********" for q in logged)
    with pytest.raises(AuthenticationError):
        ProxmoxAPI(
            "127.0.0.1",
            port=pvesim.port,
            user="root@pam",
            password="wrong",
            verify_ssl=str(pvesim.ca),
        )


def test_401_without_valid_credentials_and_tls_is_verified(pvesim: PveSim) -> None:
    url = f"{pvesim.url}/api2/json/version"
    assert requests.get(url, verify=str(pvesim.ca)).status_code == 401
    user = pvesim.token.split("=", 1)[0]
    bad = {"Authorization": f"PVEAPIToken={user}=not-the-secret"}
    assert requests.get(url, headers=bad, verify=str(pvesim.ca)).status_code == 401
    good = {"Authorization": f"PVEAPIToken={pvesim.token}"}
    assert requests.get(url, headers=good, verify=str(pvesim.ca)).json()["data"]["release"] == "9.1"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, headers=good, verify=True)


def test_nextid_resources_and_request_log(pvesim: PveSim) -> None:
    api = pvesim.api()
    assert int(api.cluster.nextid.get()) == pvesim.first_vmid
    vmid = pvesim.vmid()
    _make_ct(pvesim, vmid)
    assert int(api.cluster.nextid.get()) == vmid + 1
    e = _err(lambda: api.cluster.nextid.get(vmid=vmid))
    assert e.errors == {"vmid": f"VM {vmid} already exists"}
    res = api.cluster.resources.get(type="vm")
    assert [(r["vmid"], r["status"], r["name"], r["type"]) for r in res] == [
        (vmid, "stopped", "t1", "lxc")
    ]
    nodes = {n["node"]: n["status"] for n in api.nodes.get()}
    assert nodes == {NODE: "online", "pve2": "offline"}
    e = _err(lambda: api.nodes("pve2").lxc.get())
    assert e.status_code == 595
    log = pvesim.requests()
    assert {"method": "GET", "path": "/cluster/nextid", "params": {"vmid": str(vmid)}} in log
    assert log[-1] == {"method": "GET", "path": "/nodes/pve2/lxc", "params": {}}


def test_failed_task_reports_error_and_log(pvesim: PveSim) -> None:
    api = pvesim.api()
    vmid = pvesim.vmid()
    upid = api.nodes(NODE).lxc.post(vmid=vmid, ostemplate="local:vztmpl/missing.tar")
    assert upid.startswith(f"UPID:{NODE}:") and f":vzcreate:{vmid}:" in upid
    st = pvesim.wait_task(upid)
    msg = f"unable to create CT {vmid} - volume 'local:vztmpl/missing.tar' does not exist"
    assert st["exitstatus"] == msg
    assert pvesim.task_log(upid)[-1] == f"TASK ERROR: {msg}"
    assert not (pvesim.dir / "etc-pve" / "lxc" / f"{vmid}.conf").exists()


def test_upload_template_then_create(pvesim: PveSim, tmp_path: Path) -> None:
    api = pvesim.api()
    archive = oci_archive(tmp_path / "my image.tar", busybox_image())
    storage = api.nodes(NODE).storage("local")
    with open(archive, "rb") as f:
        upid = storage.upload.post(content="vztmpl", filename=f)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    vols = [c["volid"] for c in storage.content.get(content="vztmpl")]
    assert vols == ["local:vztmpl/my_image.tar"]  # normalised as PVE does
    (tmp_path / "x.exe").write_bytes(b"MZ")
    with open(tmp_path / "x.exe", "rb") as f:
        e = _err(lambda: storage.upload.post(content="vztmpl", filename=f))
    assert e.errors == {"filename": "wrong file extension"}
    assert not list((pvesim.dir / "tmp").glob("pveupload-*"))
    vmid = pvesim.vmid()
    upid = api.nodes(NODE).lxc.post(vmid=vmid, ostemplate=vols[0], memory=64)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    cfg = api.nodes(NODE).lxc(vmid).config.get()
    assert cfg["entrypoint"] == '/bin/sh "-c" "echo hello"'
    assert cfg["cmode"] == "console" and cfg["unprivileged"] == 1
    assert cfg["rootfs"] == f"local:{vmid}/subvol-{vmid}-disk-0.subvol,size=4G"
    assert cfg["env"] == "PATH=/bin"
    subvol = (
        pvesim.dir / "storage" / "local" / "images" / str(vmid) / f"subvol-{vmid}-disk-0.subvol"
    )
    assert (subvol / "bin" / "busybox").stat().st_uid == 100000
    upid = api.nodes(NODE).lxc(vmid).delete(purge=1)
    assert pvesim.wait_task(upid)["exitstatus"] == "OK"
    assert not subvol.exists()
    assert api.cluster.resources.get(type="vm") == []


def test_tasks_run_in_background(pvesim: PveSim) -> None:
    # The UPID comes back before the work is done; status says running meanwhile.
    vmid = pvesim.vmid()
    _make_ct(pvesim, vmid)
    snippet = pvesim.add_snippet("slow", "#!/bin/sh\nsleep 2\nexit 1\n")
    assert pvesim.pct("set", str(vmid), "--hookscript", snippet).returncode == 0
    api = pvesim.api()
    t0 = time.monotonic()
    upid = api.nodes(NODE).lxc(vmid).status.start.post()
    assert time.monotonic() - t0 < 1.5
    assert api.nodes(NODE).tasks(upid).status.get()["status"] == "running"
    st = pvesim.wait_task(upid)
    assert st["exitstatus"].startswith(f"hookscript error for {vmid} on pre-start")


def test_hostile_values_cannot_inject_config_or_escape_storage(pvesim: PveSim) -> None:
    victim = pvesim.vmid()
    _make_ct(pvesim, victim)
    vmid = pvesim.vmid()
    _make_ct(pvesim, vmid)
    api = pvesim.api()
    ct = api.nodes(NODE).lxc(vmid)
    conf_path = pvesim.dir / "etc-pve" / "lxc" / f"{vmid}.conf"
    before = conf_path.read_text()
    # A newline in env or entrypoint would be a new (root-only) line in the file.
    e = _err(lambda: ct.config.put(env="A=1\nlxc.hook.pre-start: /tmp/evil"))
    assert e.status_code == 400 and e.errors == {"env": "value does not match the regex pattern"}
    e = _err(lambda: ct.config.put(entrypoint="/bin/sh\nlxc.hook.pre-start: /tmp/evil"))
    assert e.status_code == 500
    assert e.content == "detected invalid newline inside property 'entrypoint'"
    assert conf_path.read_text() == before
    # A volume name climbing out of images/ is no volume; another CT's disk is never freed.
    e = _err(lambda: ct.config.put(mp0=f"local:{vmid}/..,mp=/x"))
    assert e.status_code == 400
    assert e.errors == {
        "mp0": "invalid format - format error\nmp0.volume: invalid format"
        " - invalid character in mount point path\n"
    }
    e = _err(lambda: ct.config.put(mp0=f"local:{vmid}/etc,mp=/x"))
    assert e.status_code == 500 and e.content == f"unable to parse volume name '{vmid}/etc'"
    images = pvesim.dir / "storage" / "local" / "images"
    ct.config.put(mp0=f"local:{victim}/subvol-{victim}-disk-0.subvol,mp=/shared")
    assert pvesim.wait_task(ct.delete())["exitstatus"] == "OK"
    assert (images / str(victim) / f"subvol-{victim}-disk-0.subvol" / "bin").is_dir()
    assert not (images / str(vmid)).exists()


def test_oci_registry_pull_then_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pvesim.fixtures import start_sim
    from tests.support.registry import push_image, start_registry

    # docker-registry reads REGISTRY_* variables as config (REGISTRY_AUTH_FILE is skopeo's).
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    reg = start_registry(tmp_path / "reg")
    try:
        push_image(reg.addr, busybox_image(Cmd=["echo pulled"]), "test/bb:1.0", tmp_path)
        # PVE pulls over https; the test registry is plain http, which the sim allows per host.
        sim = start_sim(env={"PVESIM_INSECURE_REGISTRIES": reg.addr})
        try:
            storage = sim.api().nodes(NODE).storage("local")
            e = _err(lambda: storage("oci-registry-pull").post(reference="no tag here"))
            assert e.errors == {"reference": "value does not match the regex pattern"}
            upid = storage("oci-registry-pull").post(reference=f"{reg.addr}/test/bb:1.0")
            assert sim.wait_task(upid)["exitstatus"] == "OK"
            vols = [c["volid"] for c in storage.content.get(content="vztmpl")]
            name = f"{reg.addr}/test/bb:1.0".replace("/", "_").replace(":", "_") + ".tar"
            assert vols == [f"local:vztmpl/{name}"]
            vmid = sim.vmid()
            upid = sim.api().nodes(NODE).lxc.post(vmid=vmid, ostemplate=vols[0], memory=64)
            assert sim.wait_task(upid)["exitstatus"] == "OK"
            cfg = sim.api().nodes(NODE).lxc(vmid).config.get()
            assert cfg["entrypoint"] == '/bin/sh "-c" "echo pulled"'
        finally:
            sim.close()
    finally:
        reg.stop()


def test_a_stalled_tls_client_does_not_block_others(pvesim: PveSim) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", pvesim.port)):
        # No ClientHello sent: the server must still answer another client.
        assert int(pvesim.api(timeout=5).cluster.nextid.get()) == pvesim.first_vmid


def test_docker_layer_types_are_skipped_like_pve(pvesim: PveSim, tmp_path: Path) -> None:
    import hashlib
    import json
    import tarfile

    from tests.support.images import Entry, Layer, make_tar, write_layout

    img = busybox_image()
    img.layers.append(Layer(make_tar([Entry("extra.txt", data=b"from a docker layer\n")])))
    layout = tmp_path / "layout"
    write_layout(layout, img)
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    manifest["layers"][1]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    data = json.dumps(manifest).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    index["manifests"][0].update(digest=f"sha256:{digest}", size=len(data))
    (layout / "index.json").write_text(json.dumps(index))
    archive = pvesim.dir / "storage" / "local" / "template" / "cache" / "mixed.tar"
    with tarfile.open(archive, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    vmid = pvesim.vmid()
    res = pvesim.pct("create", str(vmid), "local:vztmpl/mixed.tar", "--memory", "64")
    assert res.returncode == 0, res.stderr
    subvol = (
        pvesim.dir / "storage" / "local" / "images" / str(vmid) / f"subvol-{vmid}-disk-0.subvol"
    )
    assert (subvol / "bin" / "busybox").is_file()
    assert not (subvol / "extra.txt").exists()
