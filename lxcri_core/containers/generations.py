"""A plain-LXC container's generations: the state dirs (and rootfs) it had before an upgrade.

An upgrade builds the new generation's complete state dir beside the current
one (``containers/.NAME.upgrading``, on a new rootfs), then swaps: the current
state dir moves to ``generations/NAME/N`` (N: its generation number) and the
new one takes its place. A rollback swaps back: the current dir moves aside
(``containers/.NAME.discard``) and is deleted with its rootfs, the newest
kept generation takes its place. A dir keeps everything of its generation:
the record (image, digest, spec), the LXC config, the process's files.

Crash safety: each change first writes a journal (``containers/.NAME.upgrade.json``,
atomically), whose phase says what to do with what a kill -9 left:
``building`` (nothing swapped yet): undo, i.e. remove the work dir and its new
rootfs; ``swapping``: redo the renames that are not done yet (each step checks
what exists, so a redo of a redo is harmless). ``recover`` does that, and runs
before anything reads the container (start, list, upgrade, rollback, remove).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxcri_core import faults
from lxcri_core.config import Config
from lxcri_core.containers.record import (
    RECORD,
    ContainerRecord,
    containers_dir,
    state_dir,
)
from lxcri_core.errors import BackendError, CorruptState
from lxcri_core.fsutil import atomic_write, is_mountpoint
from lxcri_core.log import get_logger

log = get_logger(__name__)

#: The process's output follows the container from one generation to the next.
CARRIED = ("console.log", "console.times")


def generations_dir(root: Path, name: str) -> Path:
    return root / "generations" / name


def journal_path(root: Path, name: str) -> Path:
    return containers_dir(root) / f".{name}.upgrade.json"


def work_dir(root: Path, name: str) -> Path:
    """Where an upgrade builds the new generation's state dir."""
    return containers_dir(root) / f".{name}.upgrading"


def discard_dir(root: Path, name: str) -> Path:
    """Where a rollback puts the generation it leaves, until it is deleted."""
    return containers_dir(root) / f".{name}.discard"


# -- the journal -----------------------------------------------------------------------------


def write_journal(root: Path, name: str, doc: dict[str, Any]) -> None:
    atomic_write(journal_path(root, name), json.dumps(doc, sort_keys=True).encode())


def read_journal(root: Path, name: str) -> dict[str, Any] | None:
    path = journal_path(root, name)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CorruptState(
            f"container {name}: its upgrade journal {path} is corrupt: {e}"
        ) from None
    if not isinstance(doc, dict) or doc.get("op") not in ("upgrade", "rollback"):
        raise CorruptState(f"container {name}: its upgrade journal {path} is unreadable")
    return doc


def pending(root: Path) -> list[str]:
    """Names of containers with an upgrade or rollback a crash left half done."""
    base = containers_dir(root)
    if not base.is_dir():
        return []
    return sorted(
        p.name[1 : -len(".upgrade.json")] for p in base.glob(".*.upgrade.json") if p.is_file()
    )


def recover(cfg: Config, name: str) -> str | None:
    """Finish or undo what a crashed upgrade/rollback of ``name`` left (caller holds the
    name lock); what was done ("undone"/"completed"), None when nothing was pending."""
    doc = read_journal(cfg.root, name)
    if doc is None:
        return None
    if doc["op"] == "upgrade" and doc.get("phase") == "building":
        undo_build(cfg, name, doc)
        done = "undone"
    elif doc["op"] == "upgrade":
        swap_in(cfg, name, int(doc["old_generation"]))
        done = "completed"
    else:
        swap_back(cfg, name, int(doc["generation"]))
        done = "completed"
    log.warning(f"container {name}: an interrupted {doc['op']} was {done}", name=name)
    return done


def recover_all(cfg: Config) -> None:
    """``recover`` every container that needs it (before a listing shows them)."""
    from lxcri_core.containers.locks import _name_lock

    for name in pending(cfg.root):
        with _name_lock(cfg, name), contextlib.suppress(BackendError):
            recover(cfg, name)


# -- the steps -------------------------------------------------------------------------------


def remove_state(cfg: Config, sdir: Path) -> None:
    """Delete a generation's state dir and its rootfs (never through a mount)."""
    from lxcri_core.containers.remove import _rmtree_unmounted
    from lxcri_core.storage import open_backend

    try:
        rec = ContainerRecord.from_json(json.loads((sdir / RECORD).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        rec = None
    if rec is not None:
        backend = open_backend(cfg, rec.storage)
        if rec.rootfs_key in backend.containers():
            backend.remove_rootfs(rec.rootfs_key)
    if sdir.exists():
        _rmtree_unmounted(sdir)


def undo_build(cfg: Config, name: str, doc: dict[str, Any]) -> None:
    """An upgrade that swapped nothing yet: its work dir and new rootfs go."""
    from lxcri_core.containers.remove import _rmtree_unmounted
    from lxcri_core.storage import open_backend

    work = work_dir(cfg.root, name)
    if work.exists():
        _rmtree_unmounted(work)
    backend = open_backend(cfg, str(doc["storage"]))
    if doc["rootfs_id"] in backend.containers():
        backend.remove_rootfs(str(doc["rootfs_id"]))
    journal_path(cfg.root, name).unlink(missing_ok=True)


def _move_current(name: str, sdir: Path, dst: Path, *, logs_to: Path, step: str) -> None:
    """The current state dir to ``dst``, its process's output first to ``logs_to`` (the
    generation that becomes current), when that exists."""
    if is_mountpoint(sdir / "rootfs"):
        raise BackendError(f"container {name}: its rootfs is still mounted; stop it first")
    if logs_to.exists():
        for fname in CARRIED:
            if (sdir / fname).exists() and not (logs_to / fname).exists():
                os.rename(sdir / fname, logs_to / fname)
    faults.point(step)
    os.rename(sdir, dst)


def swap_in(cfg: Config, name: str, old_generation: int) -> None:
    """The upgrade's swap: current dir -> generations/NAME/N, work dir -> current."""
    sdir, work = state_dir(cfg.root, name), work_dir(cfg.root, name)
    kept = generations_dir(cfg.root, name) / str(old_generation)
    if sdir.exists() and not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(kept.parent.parent, 0o700)  # every generation's env holds secrets
        _move_current(name, sdir, kept, logs_to=work, step="upgrade-swap-old")
    faults.point("upgrade-swap-new")
    if work.exists() and not sdir.exists():
        os.rename(work, sdir)
    journal_path(cfg.root, name).unlink(missing_ok=True)


def swap_back(cfg: Config, name: str, generation: int) -> None:
    """The rollback's swap: current dir -> .NAME.discard (then deleted), generation N -> current."""
    sdir, gone = state_dir(cfg.root, name), discard_dir(cfg.root, name)
    kept = generations_dir(cfg.root, name) / str(generation)
    if sdir.exists() and not gone.exists() and kept.exists():
        _move_current(name, sdir, gone, logs_to=kept, step="rollback-swap-old")
    faults.point("rollback-swap-new")
    if kept.exists() and not sdir.exists():
        os.rename(kept, sdir)
    faults.point("rollback-discard")
    if gone.exists():
        remove_state(cfg, gone)
    journal_path(cfg.root, name).unlink(missing_ok=True)


# -- what is kept ----------------------------------------------------------------------------


def kept(root: Path, name: str) -> Iterator[tuple[int, Path]]:
    """The kept generations' numbers and dirs, newest first."""
    base = generations_dir(root, name)
    if not base.is_dir():
        return
    found = sorted((int(p.name), p) for p in base.iterdir() if p.name.isdigit())
    yield from reversed(found)


def kept_record(path: Path) -> ContainerRecord:
    try:
        return ContainerRecord.from_json(json.loads((path / RECORD).read_text()))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise CorruptState(f"generation {path} is unreadable: {e}") from None


def kept_records(root: Path) -> list[ContainerRecord]:
    """The records of every container's kept generations (unreadable ones left out)."""
    out = []
    base = root / "generations"
    for name_dir in sorted(base.iterdir()) if base.is_dir() else ():
        for _number, path in kept(root, name_dir.name):
            with contextlib.suppress(CorruptState):
                out.append(kept_record(path))
    return out


def prune(cfg: Config, name: str) -> list[int]:
    """Remove generations beyond ``cfg.keep_generations`` (the oldest); their numbers."""
    removed = []
    for i, (number, path) in enumerate(kept(cfg.root, name)):
        if i >= cfg.keep_generations:
            remove_state(cfg, path)
            removed.append(number)
    return removed


def remove_all(cfg: Config, name: str) -> None:
    """Every kept generation of ``name`` (the container is being removed)."""
    for _number, path in kept(cfg.root, name):
        remove_state(cfg, path)
    with contextlib.suppress(OSError):
        shutil.rmtree(generations_dir(cfg.root, name))
