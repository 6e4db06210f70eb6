"""No operation waits without end for a lock another lxcri process holds: it says
whom it waits for after a second and gives up with a LockTimeout naming the lock."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.errors import LockTimeout, LxcriError
from lxcri_core.fsutil import flocked
from lxcri_core.storage import open_backend
from lxcri_core.store.layout import Store
from tests.conftest import lxcri_exe
from tests.support.images import busybox_image

HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == 'sh' else fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def holder() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Hold an flock on a path in another process, as a second lxcri would."""
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path, mode: str = "ex") -> subprocess.Popen[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True
        )
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline() == "held\n"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def test_flocked_says_it_waits_then_times_out(tmp_path: Path, holder) -> None:
    lock = tmp_path / "lock"
    p = holder(lock)
    notices: list[str] = []
    start = time.monotonic()
    with pytest.raises(LockTimeout) as err, flocked(lock, timeout=1.5, on_wait=notices.append):
        pass
    took = time.monotonic() - start
    assert 1.5 <= took < 5
    assert notices == [f"waiting for lock {lock} held by another lxcri process (pid {p.pid})"]
    assert str(lock) in str(err.value) and f"pid {p.pid}" in str(err.value)
    assert "lock_timeout" in str(err.value)
    assert isinstance(err.value, LxcriError)


def test_flocked_gets_the_lock_once_it_is_released(tmp_path: Path, holder) -> None:
    lock = tmp_path / "lock"
    p = holder(lock)
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {p.pid}"])
    notices: list[str] = []
    with flocked(lock, timeout=10, on_wait=notices.append):
        pass
    assert notices == []  # released within the first second: nothing to say


def test_shared_holders_do_not_block_each_other(tmp_path: Path, holder) -> None:
    lock = tmp_path / "lock"
    holder(lock, "sh")
    with flocked(lock, shared=True, timeout=0.5):
        pass
    with pytest.raises(LockTimeout), flocked(lock, timeout=0.5):
        pass


def test_prepare_image_gives_up_on_a_held_backend_lock(
    cfg: Config, store: Store, put_image, holder
) -> None:
    short = cfg.with_overrides(lock_timeout=1.0)
    be = open_backend(short, "dir")
    digest = put_image(busybox_image())
    p = holder(be.state / "lock")
    start = time.monotonic()
    want = f"lock {re.escape(str(be.state / 'lock'))}, held by .*pid {p.pid}"
    with pytest.raises(LockTimeout, match=want):
        be.prepare_image(store, digest)
    assert time.monotonic() - start < 5
    p.kill()
    p.wait()
    be.prepare_image(store, digest)  # and works once the other process is gone


def test_store_gc_gives_up_while_a_pull_holds_the_store(cfg: Config, holder) -> None:
    store = Store(cfg.image_store, lock_timeout=1.0).init()
    holder(store.tmp_dir / "gc.lock", "sh")  # a pull or create in progress
    with pytest.raises(LockTimeout, match=r"gc\.lock"), store.exclusive():
        pass
    with store.in_use():  # other readers still get in
        pass


def test_create_waiting_on_the_backend_lock_says_so(
    cfg: Config, put_image, holder, tmp_path: Path
) -> None:
    """The CLI: one line about the wait, then one line with the error, exit 1."""
    with (tmp_path / "lxcri-config.yaml").open("a") as f:  # LXCRI_CONFIG
        f.write("lock_timeout: 1.5\n")
    put_image(busybox_image())
    for name in ("dir", "overlay"):
        holder(cfg.root / "storage" / name / "lock")
    start = time.monotonic()
    r = subprocess.run(
        [lxcri_exe(), "create", "test/img:latest"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - start < 20
    assert r.returncode == 1, r
    assert "waiting for lock" in r.stderr, r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("lxcri: error: gave up after 1.5 s waiting for lock "), err
    assert "/storage/" in err and "held by another lxcri process (pid" in err, err
