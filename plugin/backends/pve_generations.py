"""A Proxmox CT's generations (``lxcri history``) and the journal of an upgrade.

A generation is a root filesystem the CT has had: its volume (the current one is
``rootfs``, older ones are kept as ``unusedN`` in pct.conf, so ``pct destroy``
frees them with the CT), its image and digest, and what of the CT's settings
that image gave it (``Derived``: the entrypoint, environment, working
directory, user, stop signal and healthcheck as ``build_spec`` derives them
from the image alone). An upgrade swaps in a newer one and moves a setting
only while it is still what the old image gave (the user set it otherwise);
a rollback does the same in reverse, from what the generation recorded, so
it needs neither the old image nor its chain in the store.

``<root>/pve/VMID/generations.json`` lists them newest first (the current one
first). ``upgrade.journal`` beside it is written atomically before any step
that changes the CT: the volume an upgrade is building, then the whole
swap (the new pct.conf, record and generations, the volumes to discard).
A process killed at any step leaves pct.conf on the old or the new rootfs,
both complete and startable; ``recover`` (run first by the next upgrade,
rollback or history) finishes a swap pct.conf already shows, else undoes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_pve.backends.pve_state import state_dir

from lxcri_core.errors import CorruptState
from lxcri_core.fsutil import atomic_write

if TYPE_CHECKING:
    from lxcri_core.spec.model import ContainerSpec
    from lxcri_core.spec.pve_config import PveConfig

GENERATIONS = "generations.json"
JOURNAL = "upgrade.journal"
ENV_KEY = "lxc.environment.runtime"


@dataclass(frozen=True)
class Derived:
    """What a CT's settings are when only its image decides them."""

    entrypoint: str = ""
    env: tuple[str, ...] = ()
    cwd: str = ""
    uid: str = "0"
    gid: str = "0"
    groups: str = ""
    halt: str = ""
    healthcheck: dict[str, Any] | None = None

    @classmethod
    def of(cls, spec: ContainerSpec) -> Derived:
        from lxcri_core.spec.pve_entrypoint import pve_entrypoint

        user = spec.user
        return cls(
            entrypoint=pve_entrypoint(spec.args),
            env=tuple(spec.env),
            cwd=spec.working_dir,
            uid=str(user.uid),
            gid=str(user.gid),
            groups=",".join(str(g) for g in user.additional_gids),
            halt=spec.stop_signal,
            healthcheck=asdict(spec.healthcheck) if spec.healthcheck else None,
        )

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Derived:
        d = dict(d)
        d["env"] = tuple(d.get("env") or ())
        return cls(**d)


@dataclass(frozen=True)
class GenRecord:
    number: int
    image: str
    image_digest: str
    created: str
    #: the Proxmox volume id of its rootfs
    volume: str
    derived: Derived | None = None
    #: the upgrade that made it current started the CT (a rollback restarts it then,
    #: even when the new image's process has exited on its own)
    started: bool = False

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["derived"] = asdict(self.derived) if self.derived else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GenRecord:
        d = dict(d)
        der = d.get("derived")
        d["derived"] = Derived.from_json(der) if der else None
        return cls(**d)


def load_generations(root: Path, vmid: int) -> list[GenRecord]:
    """The recorded generations, newest first ([] when none were recorded)."""
    p = state_dir(root, vmid) / GENERATIONS
    try:
        return [GenRecord.from_json(g) for g in json.loads(p.read_text())]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CorruptState(f"lxcri's generations of CT {vmid} ({p}) are unreadable: {e}") from None


def save_generations(root: Path, vmid: int, gens: Sequence[GenRecord]) -> None:
    doc = json.dumps([g.to_json() for g in gens], indent=1).encode()
    atomic_write(state_dir(root, vmid) / GENERATIONS, doc)


@dataclass
class Journal:
    """An upgrade or rollback under way (``phase``: ``build``, then ``swap``)."""

    op: str
    phase: str
    old_volume: str
    new_volume: str
    #: the volume this operation built (removed when it is undone); "" for a rollback
    built: str = ""
    #: what the swap writes: pct.conf's text, the record (CtState JSON), the generations
    conf: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    generations: list[dict[str, Any]] = field(default_factory=list)
    #: volumes deleted once the swap is done (discarded and pruned generations)
    discard: list[str] = field(default_factory=list)


def load_journal(root: Path, vmid: int) -> Journal | None:
    p = state_dir(root, vmid) / JOURNAL
    try:
        return Journal(**json.loads(p.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise CorruptState(
            f"lxcri's upgrade journal of CT {vmid} ({p}) is unreadable: {e}"
        ) from None


def save_journal(root: Path, vmid: int, j: Journal) -> None:
    atomic_write(state_dir(root, vmid) / JOURNAL, json.dumps(asdict(j), indent=1).encode())


def clear_journal(root: Path, vmid: int) -> None:
    (state_dir(root, vmid) / JOURNAL).unlink(missing_ok=True)


def check_storable(derived: Derived, image: str) -> None:
    """Refuse (BackendError) an image whose environment pct.conf cannot hold: a control
    character would end the line and make the rest a config line of the image's choosing."""
    from lxcri_core.errors import BackendError
    from lxcri_core.spec.pve_config import env_line_problem

    for item in derived.env:
        if problem := env_line_problem(item):
            var = item.partition("=")[0]
            raise BackendError(
                f"image {image}: environment variable {var!r} cannot be stored in pct.conf: "
                f"{problem}"
            )


def apply_derived(conf: PveConfig, old: Derived, new: Derived) -> None:
    """Move pct.conf's image-given settings from ``old``'s values to ``new``'s; a setting
    that differs from ``old``'s was set by the user and stays."""
    m = conf.main
    entrypoint = moved_entrypoint(m.get("entrypoint") or "", old, new)
    if entrypoint:
        m.set("entrypoint", entrypoint)
    _replace_lxc(conf, ENV_KEY, moved_env(m.get_all(ENV_KEY), old.env, new.env))
    user = (m.get("lxc.init.uid") or "0", m.get("lxc.init.gid") or "0")
    groups = m.get("lxc.init.groups") or ""
    if (*user, groups) == (old.uid, old.gid, old.groups):
        keep_ids = (new.uid, new.gid, new.groups) != ("0", "0", "")
        _replace_lxc(conf, "lxc.init.uid", [new.uid] if keep_ids else [])
        _replace_lxc(conf, "lxc.init.gid", [new.gid] if keep_ids else [])
        _replace_lxc(conf, "lxc.init.groups", [new.groups] if new.groups else [])
    if (m.get("lxc.init.cwd") or "") == old.cwd and new.cwd:
        _replace_lxc(conf, "lxc.init.cwd", [new.cwd])
    if (m.get("lxc.signal.halt") or "") == old.halt and new.halt:
        _replace_lxc(conf, "lxc.signal.halt", [new.halt])


def moved_entrypoint(current: str, old: Derived, new: Derived) -> str:
    """The entrypoint after a move from ``old`` to ``new`` (the user's stays)."""
    return new.entrypoint if current == old.entrypoint and new.entrypoint else current


def moved_env(current: Sequence[str], old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The environment after a move from image environment ``old`` to ``new``, variable
    by variable: one the user set (or changed) stays."""
    old_env = dict(e.partition("=")[::2] for e in old)
    new_env = dict(e.partition("=")[::2] for e in new)
    out: list[str] = []
    seen: set[str] = set()
    for item in current:
        name, _, value = item.partition("=")
        seen.add(name)
        if name in old_env and old_env[name] == value:
            if name in new_env:
                out.append(f"{name}={new_env[name]}")
            continue  # the old image's, which the new one no longer has
        out.append(item)
    out += [f"{k}={v}" for k, v in new_env.items() if k not in seen and k not in old_env]
    return out


def derived_healthcheck(
    current: dict[str, Any] | None, old: Derived, new: Derived
) -> dict[str, Any] | None:
    """The record's healthcheck after a move from ``old`` to ``new`` (the user's stays)."""
    return new.healthcheck if current == old.healthcheck else current


def _replace_lxc(conf: PveConfig, key: str, values: Sequence[str]) -> None:
    m = conf.main
    if m.get_all(key) == list(values):
        return  # unchanged: the line keeps its place
    m.delete(key)
    for v in values:
        m.add(key, v)
