"""Container operations shared by the HTTPS API, pct and pvesh (pve-container's API2/LXC*.pm).

Every operation takes the CT's config lock; long ones run as tasks
(state.run_task) and report through their task log. ``user`` is the
authenticated user: ``root@pam`` (pct, pvesh, a password ticket) may set
everything, an API token is refused what check_ct_modify_config_perm keeps for
root@pam.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.pvesim import lxcstart, oci, pctconf, schema
from tests.pvesim.state import PveError, Sim, TaskLog, param_error, remove_tree

ROOT = "root@pam"
NEW_DISK_RE = re.compile(r"^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$")
# Parameters of create/update that are actions, not config keys.
NOT_CONFIG = {
    "node",
    "vmid",
    "ostemplate",
    "storage",
    "start",
    "force",
    "unique",
    "restore",
    "ignore-unpack-errors",
    "password",
    "ssh-public-keys",
    "pool",
    "ha-managed",
    "bwlimit",
    "delete",
    "digest",
    "revert",
    "env",
}


def perm_error(msg: str) -> PveError:
    return PveError(f"Permission check failed ({msg})", 403)


def check_modify_perm(user: str, newconf: dict[str, Any], delete: list[str]) -> None:
    """PVE::LXC::check_ct_modify_config_perm: what only root@pam may change."""
    if user == ROOT:
        return
    for key in [*newconf, *delete]:
        deleting = key not in newconf
        if key == "hookscript":
            raise perm_error("changing the hookscript is only allowed for root@pam")
        if re.fullmatch(r"dev\d+", key):
            raise perm_error("configuring device passthrough is only allowed for root@pam")
        if (key == "rootfs" or re.fullmatch(r"mp\d+", key)) and not deleting:
            vol = str(lxcstart.prop(key, str(newconf[key])).get("volume", ""))
            kind = "device" if vol.startswith("/dev/") else "bind" if vol.startswith("/") else ""
            if kind:
                raise perm_error(f"mount point type {kind} is only allowed for root@pam")
        if key == "features" and not deleting:
            feats = lxcstart.prop("features", str(newconf[key]))
            if any(k != "nesting" and v for k, v in feats.items()):
                raise perm_error(
                    "changing feature flags (except nesting) is only allowed for root@pam"
                )


def _fmt_size(gib: float) -> str:
    """PVE::JSONSchema::format_size: the largest unit that divides evenly (0 is '0T')."""
    size = int(gib * 1024**3)
    for unit in ("", "K", "M", "G"):
        if size % 1024:
            return f"{size}{unit}"
        size //= 1024
    return f"{size}T"


def alloc_volume(sim: Sim, sid: str, vmid: int, gib: float, unpriv: bool) -> str:
    """A new subvol for a CT (PVE::LXC::create_disks with size 0 = subvol)."""
    st = sim.storage(sid)
    if "rootdir" not in st.content:
        raise PveError(f"storage '{sid}' does not support container directories")
    owner = 100000 if unpriv else 0
    n = 0
    if st.type == "zfspool":
        assert st.pool is not None
        existing = subprocess.run(
            ["zfs", "list", "-H", "-o", "name", "-r", st.pool], capture_output=True, text=True
        ).stdout.split()
        while f"{st.pool}/subvol-{vmid}-disk-{n}" in existing:
            n += 1
        name = f"subvol-{vmid}-disk-{n}"
        cmd = ["zfs", "create"]
        if gib > 0:
            cmd += ["-o", f"refquota={int(gib * 1024)}M"]
        res = subprocess.run([*cmd, f"{st.pool}/{name}"], capture_output=True, text=True)
        if res.returncode != 0:
            raise PveError(f"zfs error: {res.stderr.strip()}")
        volid = f"{sid}:{name}"
    else:
        assert st.path is not None
        d = st.path / "images" / str(vmid)
        d.mkdir(parents=True, exist_ok=True)
        while (d / f"subvol-{vmid}-disk-{n}.subvol").exists():
            n += 1
        (d / f"subvol-{vmid}-disk-{n}.subvol").mkdir(mode=0o755)
        volid = f"{sid}:{vmid}/subvol-{vmid}-disk-{n}.subvol"
    path, _ = sim.volume_path(volid)
    os.chown(path, owner, owner)
    os.chmod(path, 0o755)
    return volid


def free_volume(sim: Sim, volid: str) -> None:
    sid, _, name = volid.partition(":")
    st = sim.storage(sid)
    if st.type == "zfspool":
        # zfs-fuse reports a just-unmounted dataset "busy" for a moment; retry.
        for attempt in range(20):
            res = subprocess.run(
                ["zfs", "destroy", "-r", f"{st.pool}/{name}"], capture_output=True, text=True
            )
            if res.returncode == 0 or "busy" not in res.stderr:
                break
            time.sleep(0.1 * (attempt + 1))
        if res.returncode != 0:
            raise PveError(f"zfs error: {res.stderr.strip()}")
        return
    path, _ = sim.volume_path(volid)
    remove_tree(path)
    if path.parent.name.isdigit() and path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def owner(volid: str) -> int | None:
    """The VMID owning a storage volume (PVE's parse_volname ``owner``)."""
    m = re.search(r"(?:^|[:/])(?:base|vm|subvol)-(\d+)-disk-\d+", volid)
    return int(m.group(1)) if m else None


def _volumes(conf: pctconf.PctConf) -> list[str]:
    out = []
    for key, value in conf.main.items():
        if key == "rootfs" or re.fullmatch(r"(mp|unused)\d+", key):
            vol = value if key.startswith("unused") else str(lxcstart.prop(key, value)["volume"])
            if not vol.startswith("/"):
                out.append(vol)
    return out


def _alloc_new_disks(
    sim: Sim, vmid: int, conf: dict[str, str], default_sid: str, unpriv: bool, allocated: list[str]
) -> None:
    # rootfs first, then mp0, mp1, ...: the disk numbers PVE gives them.
    keys = [k for k in conf if k == "rootfs" or re.fullmatch(r"mp\d+", k)]
    for key in sorted(keys, key=lambda k: -1 if k == "rootfs" else int(k[2:])):
        mp = lxcstart.prop(key, conf[key])
        m = NEW_DISK_RE.match(str(mp["volume"]))
        if not m:
            vol = str(mp["volume"])
            if not vol.startswith("/"):
                path, _ = sim.volume_path(vol)  # refuses names PVE would not parse
                if not path.exists():
                    raise PveError(f"volume '{vol}' does not exist")
            continue
        sid, gib = m.group(1) or default_sid, float(m.group(2))
        volid = alloc_volume(sim, sid, vmid, gib, unpriv)
        allocated.append(volid)
        mp.update(volume=volid, size=_fmt_size(gib))
        conf[key] = _print(key, mp)


def _print(key: str, data: dict[str, object]) -> str:
    name = key.rstrip("0123456789") + ("[n]" if key[-1].isdigit() else "")
    return schema.print_property_string(schema.config_schema()[name]["format"], data)


def normalize_nets(conf: dict[str, str]) -> None:
    """As PVE stores netN: a generated hwaddr (prefix BC:24:11), type=veth, keys in order."""
    for key in [k for k in conf if re.fullmatch(r"net\d+", k)]:
        net = lxcstart.prop(key, conf[key])
        if not net.get("hwaddr"):
            tail = os.urandom(3)
            net["hwaddr"] = "BC:24:11:" + ":".join(f"{b:02X}" for b in tail)
        net.setdefault("type", "veth")
        conf[key] = _print(key, net)


def _detect_ostype(rootdir: Path) -> str:
    osrel = rootdir / "etc" / "os-release"
    if osrel.is_file() and not osrel.is_symlink():
        m = re.search(r"^ID=\"?([a-z]+)", osrel.read_text(errors="replace"), re.M)
        if m and m.group(1) in ("debian", "ubuntu", "alpine", "centos", "fedora", "archlinux"):
            return m.group(1)
    return "unmanaged"


def _apply_oci(conf: pctconf.PctConf, cfg: dict[str, Any], rootdir: Path, log: TaskLog) -> None:
    cmd = oci.init_cmd(cfg)
    if cmd and cmd != "/sbin/init":
        conf.main["entrypoint"] = cmd
        conf.main["cmode"] = "console"
    if cfg.get("WorkingDir"):
        conf.lxc.append(("lxc.init.cwd", str(cfg["WorkingDir"])))
    ids = oci.user_ids(rootdir, str(cfg.get("User") or ""))
    if ids:
        conf.lxc.append(("lxc.init.uid", str(ids[0])))
        conf.lxc.append(("lxc.init.gid", str(ids[1])))
    for env in cfg.get("Env") or []:
        conf.lxc.append(("lxc.environment.runtime", str(env)))
    conf.lxc.append(("lxc.signal.halt", str(cfg.get("StopSignal") or "SIGTERM")))
    log(f"OCI image: entrypoint {cmd!r}")


def set_env(conf: pctconf.PctConf, env: str) -> None:
    """The ``env`` parameter replaces every lxc.environment.runtime line.

    The published schema's pattern lets \\x0a-\\x0f through; current PVE refuses
    every control character, and so does the simulator: a newline here would
    be a new line in the config file.
    """
    if any(schema.CONTROL.search(e) for e in env.split("\0")):
        raise param_error("env", "value does not match the regex pattern")
    keep = [(k, v) for k, v in conf.lxc if k != "lxc.environment.runtime"]
    conf.lxc = keep + [("lxc.environment.runtime", e) for e in env.split("\0") if e]


def create(sim: Sim, params: dict[str, Any], user: str, log: TaskLog) -> None:
    vmid = int(params["vmid"])
    template = str(params["ostemplate"])
    sid = str(params.get("storage", "local"))
    conf_keys = {k: _str(v) for k, v in params.items() if k not in NOT_CONFIG}
    conf_keys.setdefault("unprivileged", "1")
    conf_keys.setdefault("arch", "amd64")
    conf_keys.setdefault("rootfs", f"{sid}:4")
    unpriv = conf_keys["unprivileged"] == "1"
    allocated: list[str] = []
    with sim.lock(vmid):
        if sim.exists(vmid) and not params.get("force"):
            raise PveError(
                f"unable to create CT {vmid} - CT {vmid} already exists on node '{sim.node}'"
            )
        try:
            tpath, kind = sim.volume_path(template)
            if kind != "vztmpl" or not tpath.is_file():
                raise PveError(f"volume '{template}' does not exist")
            conf = pctconf.PctConf()
            conf.main["lock"] = "create"
            sim.write(vmid, conf)
            _alloc_new_disks(sim, vmid, conf_keys, sid, unpriv, allocated)
            normalize_nets(conf_keys)
            conf.main.update({k: v for k, v in conf_keys.items() if k != "description"})
            if "description" in conf_keys:
                conf.description = conf_keys["description"].rstrip("\n") + "\n"
            rootdir = lxcstart.volume_dir(
                sim, str(lxcstart.prop("rootfs", conf.main["rootfs"])["volume"])
            )
            log(f"extracting archive '{tpath}'")
            if oci.is_oci_archive(tpath):
                cfg = oci.extract(tpath, rootdir, sim.root / "tmp", unpriv)
                _apply_oci(conf, cfg, rootdir, log)
            else:
                _extract_tar(tpath, rootdir, unpriv)
            log(f"Total bytes read: {tpath.stat().st_size}")
            conf.main.setdefault("ostype", _detect_ostype(rootdir))
            if "env" in params:
                set_env(conf, str(params["env"]))
            conf.main.setdefault("hostname", f"CT{vmid}")
            conf.main.setdefault("memory", "512")
            conf.main.setdefault("swap", "512")
            del conf.main["lock"]
            sim.write(vmid, conf)
        except Exception as e:
            for volid in allocated:
                try:
                    free_volume(sim, volid)
                except PveError as fe:
                    log(f"WARN: {fe}")
            sim.remove_conf(vmid)
            msg = str(e)
            raise PveError(
                msg if msg.startswith("unable to create") else f"unable to create CT {vmid} - {msg}"
            ) from None
    if params.get("start"):
        start(sim, vmid, log)


def _extract_tar(archive: Path, rootdir: Path, unpriv: bool) -> None:
    # Create.pm's restore_tar_archive: GNU tar, numeric owners, /dev left out.
    res = subprocess.run(
        [
            "tar",
            "xpf",
            str(archive),
            "--numeric-owner",
            "--totals",
            "--anchored",
            "--exclude",
            "./dev/*",
            "-C",
            str(rootdir),
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise PveError(f"command 'tar xpf {archive}' failed: {res.stderr.strip()}")
    if unpriv:
        oci.shift_ids(rootdir)


def _free_disk_name(sim: Sim, sid: str, vmid: int) -> str:
    """The first free ``subvol-VMID-disk-N`` on storage ``sid`` (PVE's find_free_diskname)."""
    st = sim.storage(sid)
    n = 0
    while True:
        name = f"subvol-{vmid}-disk-{n}"
        volid = f"{sid}:{name}" if st.type == "zfspool" else f"{sid}:{vmid}/{name}.subvol"
        if st.type == "zfspool":
            assert st.pool is not None
            taken = subprocess.run(["zfs", "list", f"{st.pool}/{name}"], capture_output=True)
            if taken.returncode != 0:
                return volid
        elif not sim.volume_path(volid)[0].exists():
            return volid
        n += 1


def check_reassign(sim: Sim, vmid: int, key: str, target: int, tkey: str) -> None:
    """move_volume's $load_and_check_reassign_configs (API2/LXC.pm)."""
    if key == "rootfs" or tkey == "rootfs":
        raise PveError("Cannot move to/from 'rootfs'")
    if key.startswith("unused") and not tkey.startswith("unused"):
        raise PveError("Moving an unused volume to a used one is not possible")
    for v in (vmid, target):
        if not sim.exists(v):
            raise PveError(f"could not find CT {v}")
    src, dst = sim.load(vmid), sim.load(target)
    for c in (src, dst):
        if c.main.get("lock"):
            raise PveError(f"CT is locked ({c.main['lock']})")
        if c.main.get("template") == "1":
            raise PveError("Can't move volumes from or to template CT")
    if key not in src.main:
        raise PveError(f"volume '{key}' for container '{vmid}' does not exist")
    if tkey in dst.main:
        raise PveError(f"Target volume key '{tkey}' is already in use for container '{target}'")
    unused = key.startswith("unused")
    vol = src.main[key] if unused else str(lxcstart.prop(key, src.main[key])["volume"])
    if vol.startswith("/"):
        raise PveError("Cannot move a bindmount or device mount to another container")
    if lxcstart.state(sim, vmid)[0] == "running" and not key.startswith("unused"):
        raise PveError(
            "Cannot move in-use volume while the source CT is running - detach or shutdown first"
        )


def reassign_volume(sim: Sim, vmid: int, key: str, target: int, tkey: str, log: TaskLog) -> None:
    """The volume of ``key`` renamed to ``target``'s and put in its config at ``tkey``."""
    with sim.lock(vmid), sim.lock(target):
        check_reassign(sim, vmid, key, target, tkey)
        src, dst = sim.load(vmid), sim.load(target)
        unused = key.startswith("unused")
        mp = {} if unused else lxcstart.prop(key, src.main[key])
        old = src.main[key] if unused else str(mp["volume"])
        log(f"moving volume '{key}' from container '{vmid}' to '{target}'")
        sid = old.partition(":")[0]
        new = _free_disk_name(sim, sid, target)
        st = sim.storage(sid)
        if st.type == "zfspool":
            assert st.pool is not None
            names = [f"{st.pool}/{v.partition(':')[2]}" for v in (old, new)]
            res = subprocess.run(
                ["zfs", "rename", *names],
                capture_output=True,
                text=True,
            )
            if res.returncode != 0:
                raise PveError(f"zfs error: {res.stderr.strip()}")
        else:
            dest, _ = sim.volume_path(new)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src_path, _ = sim.volume_path(old)
            os.rename(src_path, dest)
            if not any(src_path.parent.iterdir()):
                src_path.parent.rmdir()
        del src.main[key]
        log(f"removing volume '{key}' from container '{vmid}' config")
        sim.write(vmid, src)
        if tkey.startswith("unused"):
            dst.main[tkey] = new
        else:
            mp["volume"] = new
            dst.main[tkey] = _print(tkey, mp)
        sim.write(target, dst)
        log(f"target container '{target}' updated with '{tkey}'")


def check_move_to_storage(sim: Sim, vmid: int, key: str) -> None:
    conf = sim.load(vmid)
    if conf.main.get("lock"):
        raise PveError(f"CT is locked ({conf.main['lock']})")
    if lxcstart.state(sim, vmid)[0] == "running":
        raise PveError("cannot move volumes of a running container")
    if key.startswith("unused"):
        raise PveError(
            f"cannot move volume '{key}', only configured volumes can be moved to another storage"
        )
    if key not in conf.main:
        raise PveError(f"volume '{key}' for container '{vmid}' does not exist")


def move_to_storage(sim: Sim, vmid: int, key: str, sid: str, delete: bool, log: TaskLog) -> None:
    """A copy of the volume on ``sid`` in its place; the original kept as unusedN."""
    with sim.lock(vmid):
        check_move_to_storage(sim, vmid, key)
        conf = sim.load(vmid)
        mp = lxcstart.prop(key, conf.main[key])
        old = str(mp["volume"])
        unpriv = conf.main.get("unprivileged") == "1"
        new = alloc_volume(sim, sid, vmid, 0, unpriv)
        src, _ = sim.volume_path(old)
        dest, _ = sim.volume_path(new)
        log(f"copying volume '{old}' to '{new}'")
        res = subprocess.run(["cp", "-a", f"{src}/.", str(dest)], capture_output=True, text=True)
        if res.returncode != 0:
            free_volume(sim, new)
            raise PveError(f"copy failed: {res.stderr.strip()}")
        mp["volume"] = new
        conf.main[key] = _print(key, mp)
        if delete:
            free_volume(sim, old)
        else:
            _add_unused(conf, old)
        sim.write(vmid, conf)


def _add_unused(conf: pctconf.PctConf, volid: str) -> None:
    n = 0
    while f"unused{n}" in conf.main:
        n += 1
    conf.main[f"unused{n}"] = volid


def _str(v: Any) -> str:
    return str(v)


def start(sim: Sim, vmid: int, log: TaskLog) -> None:
    with sim.lock(vmid):
        conf = sim.load(vmid)
        if conf.main.get("lock"):
            raise PveError(f"CT is locked ({conf.main['lock']})")
        if conf.main.get("template") == "1":
            raise PveError("a template cannot be started")
        if conf.pending or conf.pending_delete:
            conf.apply_pending()
            sim.write(vmid, conf)
        lxcstart.start(sim, vmid, conf, log)


def stop(
    sim: Sim, vmid: int, log: TaskLog, timeout: int | None = None, force: bool = False
) -> None:
    conf = sim.load(vmid)
    lxcstart.stop(sim, vmid, conf, log, timeout, force)


def reboot(sim: Sim, vmid: int, log: TaskLog, timeout: int | None) -> None:
    conf = sim.load(vmid)
    lxcstart.stop(sim, vmid, conf, log, timeout or 60, force=True)
    start(sim, vmid, log)


def destroy(
    sim: Sim, vmid: int, log: TaskLog, force: bool, purge: bool, unreferenced: bool
) -> None:
    with sim.lock(vmid):
        conf = sim.load(vmid)
        if conf.main.get("protection") == "1":
            raise PveError(f"can't remove CT {vmid} - protection mode enabled")
        if conf.main.get("lock"):
            raise PveError(f"CT is locked ({conf.main['lock']})")
        if lxcstart.state(sim, vmid)[0] == "running":
            if not force:
                raise PveError(f"unable to destroy CT {vmid} - container is running")
            log(f"forced to stop CT {vmid} before destroying!")
            lxcstart.stop(sim, vmid, conf, log, None, True)
        for volid in _volumes(conf):
            # Only the CT's own volumes go, as destroy_lxc_container does.
            if owner(volid) != vmid:
                continue
            log(f"destroying volume '{volid}'")
            free_volume(sim, volid)
        if unreferenced:
            for st in sim.storages().values():
                if st.type == "dir" and st.path is not None:
                    remove_tree(st.path / "images" / str(vmid))
        sim.remove_conf(vmid)
        shutil.rmtree(sim.lxcpath / str(vmid), ignore_errors=True)
        if purge:
            log(f"purging CT {vmid} from related configurations..")


# What a running CT takes at once (Config.pm's fast-plug options and the hot-plugged
# cgroup/network keys); every other change waits in [pve:pending] for the next start.
# The simulator records hot-plugged values in the config but does not apply them live.
FASTPLUG = {
    "description",
    "onboot",
    "startup",
    "protection",
    "hostname",
    "hookscript",
    "cores",
    "tags",
    "lock",
}
HOTPLUG = {"memory", "swap", "cpulimit", "cpuunits"}


def live_option(key: str) -> bool:
    return key in FASTPLUG or key in HOTPLUG or re.fullmatch(r"net\d+", key) is not None


def update_config(sim: Sim, vmid: int, params: dict[str, Any], user: str) -> None:
    """PUT /config (synchronous in PVE for containers); ``params`` already schema-checked."""
    delete = [k for k in re.split(r"[,;\s]+", str(params.get("delete", ""))) if k]
    newconf = {k: _str(v) for k, v in params.items() if k not in NOT_CONFIG}
    if "env" in params:
        newconf_env: str | None = str(params["env"])
    else:
        newconf_env = None
    check_modify_perm(user, newconf, delete)
    with sim.lock(vmid):
        raw = sim.raw(vmid) if sim.exists(vmid) else None
        conf = sim.load(vmid)
        assert raw is not None
        if params.get("digest") and params["digest"] != pctconf.digest(raw):
            raise PveError(
                "detected modified configuration - file changed by other user? Try again."
            )
        if conf.main.get("lock") and "lock" not in newconf and "lock" not in delete:
            raise PveError(f"CT is locked ({conf.main['lock']})")
        freed: list[str] = []  # unusedN deleted: their volumes go, unless still in use
        running = lxcstart.state(sim, vmid)[0] == "running"
        for key in [k for k in re.split(r"[,;\s]+", str(params.get("revert", ""))) if k]:
            conf.pending.pop(key, None)
            if key in conf.pending_delete:
                conf.pending_delete.remove(key)
        for key in delete:
            if key in newconf:
                raise param_error(key, "unable to delete a key and set it at the same time")
            if key == "env":
                set_env(conf, "")
                continue
            if key == "description":
                conf.description = ""
                continue
            conf.pending.pop(key, None)
            # an unusedN is deleted (with its volume) at once, running or not
            # (vmconfig_hotplug_pending); other keys of a running CT wait
            if running and not live_option(key) and not re.fullmatch(r"unused\d+", key):
                if key not in conf.pending_delete:
                    conf.pending_delete.append(key)
                continue
            old = conf.main.pop(key, None)
            if old is not None and re.fullmatch(r"unused\d+", key):
                freed.append(old)
            if old is not None and re.fullmatch(r"mp\d+", key):
                vol = str(lxcstart.prop(key, old)["volume"])
                if not vol.startswith("/"):
                    n = 0
                    while f"unused{n}" in conf.main:
                        n += 1
                    conf.main[f"unused{n}"] = vol
        unpriv = conf.main.get("unprivileged") == "1"
        allocated: list[str] = []
        _alloc_new_disks(sim, vmid, newconf, "local", unpriv, allocated)
        normalize_nets(newconf)
        for key, value in newconf.items():
            if key == "description":
                conf.description = value.rstrip("\n") + "\n"
                continue
            if key in conf.pending_delete:
                conf.pending_delete.remove(key)
            if running and not live_option(key):
                conf.pending[key] = value  # applied at the next start
            else:
                conf.pending.pop(key, None)
                conf.main[key] = value
        if newconf_env is not None:
            set_env(conf, newconf_env)
        sim.write(vmid, conf)
        for volid in freed:
            if owner(volid) == vmid and volid not in _volumes(conf) + _pending_volumes(conf):
                free_volume(sim, volid)


def _pending_volumes(conf: pctconf.PctConf) -> list[str]:
    out = []
    for key, value in conf.pending.items():
        if key == "rootfs" or re.fullmatch(r"mp\d+", key):
            out.append(str(lxcstart.prop(key, value)["volume"]))
    return out


def typed(props: dict[str, Any], key: str, value: str) -> Any:
    p = schema._prop_for(props, key)
    return schema.coerce(p, value) if p and schema.check_value(p, value) is None else value


def pending(sim: Sim, vmid: int) -> list[dict[str, Any]]:
    """GET /pending: each key with its value, the pending value and/or delete."""
    conf = sim.load(vmid)
    props = schema.config_schema()
    out = []
    for key in sorted(set(conf.main) | set(conf.pending) | set(conf.pending_delete)):
        entry: dict[str, Any] = {"key": key}
        if key in conf.main:
            entry["value"] = typed(props, key, conf.main[key])
        if key in conf.pending:
            entry["pending"] = typed(props, key, conf.pending[key])
        if key in conf.pending_delete:
            entry["delete"] = 1
        out.append(entry)
    return out


def status(sim: Sim, vmid: int) -> dict[str, Any]:
    conf = sim.load(vmid)
    st, pid = lxcstart.state(sim, vmid)
    m = conf.main
    memory = int(m.get("memory", "512"))
    out: dict[str, Any] = {
        "vmid": vmid,
        "status": st,
        "name": m.get("hostname", f"CT{vmid}"),
        "type": "lxc",
        "cpus": int(m.get("cores", "0") or 0) or os.cpu_count() or 1,
        "maxmem": memory * 1024 * 1024,
        "maxswap": int(m.get("swap", "512")) * 1024 * 1024,
        "maxdisk": 0,
        "disk": 0,
        "mem": 0,
        "cpu": 0,
        "netin": 0,
        "netout": 0,
        "diskread": 0,
        "diskwrite": 0,
        "uptime": 0,
        "ha": {"managed": 0},
        "template": int(m.get("template", "0")),
    }
    if st == "running" and pid:
        out["pid"] = pid
        started = sim.lxcpath / str(vmid) / "started"
        if started.exists():
            out["uptime"] = int(time.time() - float(started.read_text() or time.time()))
    if m.get("lock"):
        out["lock"] = m["lock"]
    if m.get("tags"):
        out["tags"] = m["tags"]
    return out


def config_for_api(sim: Sim, vmid: int, current: bool = False) -> dict[str, Any]:
    """GET /config: typed values (pending ones applied unless ``current``), ``lxc``
    pairs, ``env`` NUL-joined, ``digest``."""
    raw = sim.raw(vmid) if sim.exists(vmid) else ""
    conf = sim.load(vmid)
    if not current:
        conf.apply_pending()
    props = schema.config_schema()
    out: dict[str, Any] = {}
    for k, v in conf.main.items():
        out[k] = typed(props, k, v)
    if conf.description:
        out["description"] = conf.description
    if conf.lxc:
        out["lxc"] = [[k, v] for k, v in conf.lxc]
    env = conf.env_runtime()
    if env:
        out["env"] = "\0".join(env)
    out["digest"] = pctconf.digest(raw)
    return out
