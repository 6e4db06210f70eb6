"""What ``POST /nodes/{node}/lxc`` gets for a CreateRequest, and what the API cannot do.

The container's settings are rendered by ``render_pve_config`` (the encoder
pve-local writes its files with) and sent as the API's parameters
(``PveConfig.api_params``: options as they are, the environment as the
NUL-joined ``env``). PVE 9.1's OCI import itself writes the image's
``lxc.init.cwd``, ``lxc.signal.halt`` and USER (``lxc.init.uid``/``gid``) into
the config; any other raw ``lxc.*`` key, the hookscript (so ``-p`` ports and
healthchecks, which lxcri's hookscript runs), bind mounts and devices can be
written only by root on the node: each is refused here, before anything is
uploaded, with a line naming the local path, never dropped.

One difference is stated rather than refused: without ``--cap-add`` or
``--cap-drop`` a CT made through the API keeps Proxmox's capability set for
unprivileged containers (lxcri's docker-like drop list is an ``lxc.cap.drop``
line, root's to write).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from lxcri_pve.backends.pve_api_client import LOCAL_HINT, Credentials, checked_node
from lxcri_pve.backends.pve_state import with_lxcri_tag

from lxcri_core.backend import CreateRequest
from lxcri_core.config import Config
from lxcri_core.errors import BackendError
from lxcri_core.media import Platform
from lxcri_core.platforms import _ARCH
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.options import RunOptions, parse_label
from lxcri_core.spec.pve_config import parse_property_string, render_pve_config

#: The description line that holds the CT's labels (``--label``), as a JSON object.
LABELS_LINE = "lxcri labels "
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Root-file-system size (GiB) when the request gives none.
#: What the docker-style flags that end up as raw ``lxc.*`` keys are called.
_RAW_KEY_FLAGS = {
    "lxc.init.cwd": "--workdir",
    "lxc.signal.halt": "--stop-signal",
    "lxc.init.uid": "--user",
    "lxc.init.gid": "--user",
    "lxc.init.groups": "--group-add",
    "lxc.cap.drop": "--cap-add/--cap-drop",
    "lxc.seccomp.profile": "--security-opt seccomp",
    "lxc.cgroup2.pids.max": "--pids-limit",
    "lxc.prlimit.": "--ulimit",
    "lxc.mount.entry": "--tmpfs",
}


def refuse(what: str) -> BackendError:
    return BackendError(f"{what}: the Proxmox API does not allow it; {LOCAL_HINT}")


def node_platform(status: Mapping[str, Any]) -> Platform:
    """A node's OCI platform from ``GET /nodes/{node}/status`` (``current-kernel.machine``,
    else the last word of ``kversion``, ``uname -a``'s); Proxmox VE runs on amd64 when unsure."""
    machine = ""
    ck = status.get("current-kernel")
    if isinstance(ck, Mapping):
        machine = str(ck.get("machine") or "")
    if not machine:
        words = str(status.get("kversion") or "").split()
        machine = words[-1] if words else ""
    arch, variant = _ARCH.get(machine, ("amd64", ""))
    return Platform("linux", arch, variant)


def choose_node(resources: list[dict[str, Any]], wanted: str) -> str:
    """``wanted`` if online, else the online node with the least cpu + memory use."""
    nodes = {checked_node(r.get("node")): r for r in resources if r.get("type") == "node"}
    if wanted:
        r = nodes.get(wanted)
        if r is None:
            known = ", ".join(sorted(nodes)) or "none"
            raise BackendError(f"node {wanted!r} is not in the cluster (nodes: {known})")
        if r.get("status") != "online":
            raise BackendError(
                f"node {wanted} is {r.get('status') or 'offline'}: choose another with "
                "pve_node (LXCRI_PVE_NODE) or leave it empty for the least-loaded online node"
            )
        return wanted
    online = [r for r in nodes.values() if r.get("status") == "online"]
    if not online:
        raise BackendError("no node of the Proxmox cluster is online")

    def load(r: dict[str, Any]) -> float:
        mem = float(r.get("mem") or 0) / float(r.get("maxmem") or 1)
        return float(r.get("cpu") or 0) + mem

    return str(min(online, key=lambda r: (load(r), str(r.get("node"))))["node"])


def template_name(image: str, archive_sha256: str) -> str:
    """The vztmpl file name of an exported image: readable, and named by its content so that
    an identical upload is found again (PVE keeps ``[-a-zA-Z0-9_.]`` of a name, and takes an
    OCI archive only by its ``.tar`` suffix)."""
    repo = image.rsplit("/", 1)[-1].split("@", 1)[0]
    safe = re.sub(r"[^-a-zA-Z0-9_.]", "_", repo.replace(":", "-"))[:60]
    return f"lxcri-{safe}-{archive_sha256[:32]}.tar"


def sha256_file(path: Any) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def first_generation_line(
    image_config: Mapping[str, Any], image: str, digest: str, hostname: str
) -> str:
    """The description line recording the CT's first generation, with what its image
    gives it (its volume is PVE's to name: filled in by the first upgrade)."""
    from datetime import UTC, datetime

    from lxcri_pve.backends.pve_api_upgrade import GENERATIONS_LINE, derived_of, gens_json
    from lxcri_pve.backends.pve_generations import GenRecord

    now = datetime.now(UTC).isoformat(timespec="seconds")
    gen = GenRecord(1, image, digest, now, "", derived_of(image_config, image, hostname))
    return GENERATIONS_LINE + json.dumps(gens_json([gen]), separators=(",", ":"), sort_keys=True)


def description_labels(description: str) -> dict[str, str]:
    """The labels ``create_params`` wrote into a CT's description ({} when none or
    unreadable: the description is the user's to edit)."""
    for line in description.splitlines():
        if line.startswith(LABELS_LINE):
            try:
                data = json.loads(line[len(LABELS_LINE) :])
            except ValueError:
                return {}
            if isinstance(data, dict):
                return {str(k): str(v) for k, v in data.items()}
    return {}


def _flag_of(key: str) -> str:
    for prefix, flag in _RAW_KEY_FLAGS.items():
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return flag
    return "an option"


def check_pct_property(key: str, value: str | None, creds: Credentials) -> None:
    """Refuse a pct-style property the API would refuse this caller (or cannot set at all)."""
    if not re.fullmatch(r"[a-z][a-z0-9_\-]*", key) and not key.startswith("lxc"):
        raise BackendError(f"{key!r} is not a Proxmox container property")
    if value is not None and key != "description" and _CONTROL.search(value):
        # a newline in a value would be a line of its own in the CT's config file
        raise BackendError(f"the value of {key} holds a control character; Proxmox refuses it")
    if key.startswith("lxc") or key == "lxc":
        raise refuse(f"{key} is a raw LXC key, written only into the config file by root")
    if creds.is_root:
        return
    if key == "hookscript":
        raise refuse(f"the hookscript can be set only by root@pam, not {creds.who}")
    if re.fullmatch(r"dev\d+", key):
        raise refuse(f"{key}: device passthrough can be set only by root@pam, not {creds.who}")
    if value is not None and (key == "rootfs" or re.fullmatch(r"mp\d+", key)):
        vol = parse_property_string(value, "volume").get("volume", "")
        if vol.startswith("/"):
            raise refuse(
                f"{key}: a bind mount ({vol}) can be set only by root@pam, not {creds.who}"
            )


def _refuse_options(req: CreateRequest, creds: Credentials) -> None:
    opts = req.options
    if opts.publish or opts.publish_all:
        raise refuse(
            "publishing ports (-p/-P) needs lxcri's hookscript on the node, which only root "
            "installs and sets"
        )
    if req.auto_remove:
        raise refuse("--rm needs lxcri's supervisor on the node to remove the CT when it ends")
    if opts.user is not None or opts.group_add:
        # PVE writes the image's own USER itself; another one is an lxc.init.uid line
        raise refuse("--user/--group-add set lxc.init.uid/gid, a raw LXC key root writes")
    if opts.devices and not creds.is_root:
        raise refuse(f"--device needs devN, which only root@pam may set (not {creds.who})")


def create_params(
    cfg: Config,
    req: CreateRequest,
    image_config: Mapping[str, Any],
    image: str,
    digest: str,
    creds: Credentials,
    *,
    vmid: int,
    storage: str,
    platform: Platform,
) -> dict[str, Any]:
    """The parameters of ``POST /nodes/{node}/lxc`` (without node, vmid and ostemplate)."""
    _refuse_options(req, creds)
    opts: RunOptions = dataclasses.replace(
        req.options,
        user="0" if req.options.user is None else req.options.user,
        bridge=req.options.bridge or cfg.pve_bridge,
    )
    spec = build_spec(image_config, opts, None, image=image)
    if spec.healthcheck is not None:
        raise refuse(
            "the healthcheck (the image's HEALTHCHECK or --health-cmd) is run by lxcri's "
            "hookscript supervisor on the node; pass --no-healthcheck to create it without"
        )
    if spec.restart.name != "no":
        raise refuse(f"--restart {spec.restart} needs lxcri's supervisor on the node")
    for mnt in spec.mounts:
        if mnt.kind == "volume":
            raise BackendError(
                f"named volume {mnt.source!r} at {mnt.target}: named volumes live on the host "
                "lxcri runs on; through the API use an anonymous one (-v " + mnt.target + "), "
                f"which Proxmox allocates on {storage}, or {LOCAL_HINT}"
            )
        if mnt.kind == "bind" and not creds.is_root:
            raise refuse(f"bind mount {mnt.source}:{mnt.target} can be set only by root@pam")
    base = build_spec(image_config, RunOptions(user="0"), None, image=image)
    description = f"lxcri image {image}\nlxcri digest {digest}"
    description += "\n" + first_generation_line(image_config, image, digest, spec.hostname)
    labels = dict(parse_label(v) for v in req.options.labels)
    if labels:
        # the user's only (an image's may fill PVE's 8 KiB description), on one line (JSON
        # escapes every control character); auto-update selects the CTs by them
        description += f"\n{LABELS_LINE}{json.dumps(labels, sort_keys=True)}"
    rendered = render_pve_config(
        spec,
        vmid,
        storage=storage,
        rootfs_size_gb=cfg.pve_rootfs_size,
        arch=platform.architecture,
        description=description,
    )
    for key, value in rendered.raw_lxc_entries():
        if key == "lxc.init.cwd" and spec.working_dir == base.working_dir:
            continue  # PVE writes the image's WorkingDir itself
        if key == "lxc.signal.halt" and spec.stop_signal == base.stop_signal:
            continue  # and its StopSignal
        if key == "lxc.cap.drop" and not req.options.cap_add and not req.options.cap_drop:
            continue  # Proxmox's own capability set (module docstring)
        raise refuse(f"{_flag_of(key)} needs the raw key {key}: {value}, which only root writes")
    params: dict[str, Any] = dict(rendered.api_params())
    params["storage"] = storage
    for key, value in req.pct.items():
        check_pct_property(key, value, creds)
        if key == "tags":
            value = with_lxcri_tag(value)
        params[key] = value
    return params
