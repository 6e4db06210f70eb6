"""Host directories behind a container's volumes.

Named volumes (``-v data:/var/lib/x``) live in ``$LXCRI_ROOT/volumes/NAME``
and outlive their containers; anonymous ones (image ``VOLUME`` or ``-v
/path``) in ``$LXCRI_ROOT/volumes/anon-<container id>-<n>`` and go with the
container. A new volume is seeded with what the image has at its target, as
docker does, and owned by the container's root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lxcri_core.errors import BackendError
from lxcri_core.spec.model import ContainerSpec


def volumes_dir(root: Path) -> Path:
    return root / "volumes"


def prepare_volumes(
    root: Path,
    container_id: str,
    spec: ContainerSpec,
    rootfs: Path | None,
    owner: int,
    anon: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """Create (or reuse) a directory per named/anonymous volume; key as lxc_config wants.

    ``anon``: an upgrade's anonymous volumes by container path, reused as they are;
    a new one then gets a name no existing volume has (the numbering of a create
    may hold another path's data)."""
    out: dict[str, Path] = {}
    n = 0
    for m in spec.mounts:
        if m.kind == "bind":
            if not Path(m.source).exists():
                raise BackendError(f"bind mount source {m.source} does not exist on the host")
            continue
        if m.kind == "volume":
            key, path = m.source, volumes_dir(root) / m.source
        elif anon is not None and m.target in anon:
            key, path = m.target, anon[m.target]
        else:
            key, path = m.target, volumes_dir(root) / f"anon-{container_id}-{n}"
            n += 1
            while anon is not None and (path.exists() or path in anon.values()):
                path, n = volumes_dir(root) / f"anon-{container_id}-{n}", n + 1
        if not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, mode=0o755)
            seed = _seed_dir(rootfs, m.target) if rootfs else None
            if seed is not None:
                # cp -a keeps owners, modes, links and xattrs of the image's files
                proc = subprocess.run(
                    ["cp", "-a", f"{seed}/.", str(tmp)], capture_output=True, text=True
                )
                if proc.returncode != 0:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise BackendError(
                        f"cannot seed volume {path.name} from the image's {m.target}: "
                        f"{proc.stderr.strip()}"
                    )
            else:
                os.chown(tmp, owner, owner)
            os.rename(tmp, path)
        out[key] = path
    return out


def _seed_dir(rootfs: Path, target: str) -> Path | None:
    """The image's directory at ``target``, if reaching it follows no symlink.

    The image is untrusted: a symlinked component (``x -> /etc``) must not
    make us copy a host directory into a volume, so any link means no seed.
    """
    cur = rootfs
    for part in target.strip("/").split("/"):
        if part in ("", ".", ".."):
            return None
        cur = cur / part
        try:
            st = os.lstat(cur)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode):  # a symlink is not a directory to lstat
            return None
    return cur


def remove_anonymous(root: Path, container_id: str) -> None:
    for p in volumes_dir(root).glob(f"anon-{container_id}-*"):
        shutil.rmtree(p, ignore_errors=True)


def volume_map(paths: Mapping[str, Path]) -> dict[str, str]:
    return {k: str(v) for k, v in paths.items()}
