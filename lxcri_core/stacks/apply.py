"""Bring a stack up and down through the ``Backend`` protocol (so on every backend).

``up`` creates the services in ``plan.start_order``, each after its
``service_healthy`` dependencies report healthy (``status().health``), with a
timeout. A service reaches the services started before it by their service
names: their addresses go into its /etc/hosts (``--add-host``), and as every
service starts after all it depends on, it reaches each one it names in
``depends_on``. Each container carries the labels ``io.lxcri.stack=NAME``,
its service, and a digest of its settings: a second ``up`` leaves an
unchanged, running container alone, starts a stopped one and recreates a
changed one. ``down`` removes every container labelled with the stack's name
(services since deleted from the file too) and, when asked, its named volumes;
nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core import lifecycle
from lxcri_core.backend import Backend, ContainerStatus, CreateRequest, CtRef
from lxcri_core.errors import BackendError, LxcriError
from lxcri_core.fsutil import atomic_write
from lxcri_core.spec import options as o
from lxcri_core.spec.options import RunOptions
from lxcri_core.stacks.model import Service, Stack
from lxcri_core.stacks.plan import (
    CONFIG_LABEL,
    SERVICE_LABEL,
    STACK_LABEL,
    container_name,
    start_order,
    volume_name,
)

if TYPE_CHECKING:
    from lxcri_core.config import Config

#: how long ``up`` waits for a ``service_healthy`` dependency by default (seconds)
HEALTH_TIMEOUT = 120.0
_POLL = 0.5
#: how long a health of "" may last before a service counts as having no healthcheck
_NO_HEALTH_GRACE = 10.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def run_options(
    stack: Stack,
    svc: Service,
    hosts: Mapping[str, str] | None = None,
    host_env: Mapping[str, str] | None = None,
    key: bytes = b"",
) -> RunOptions:
    """The ``lxcri run`` options of ``svc``'s container; ``hosts`` (service -> address)
    become /etc/hosts lines; ``host_env`` gives values to names listed without one;
    ``key`` keys the settings digest (``config_digest``)."""
    env_src = os.environ if host_env is None else host_env
    env: list[str] = []
    for f in svc.env_files:  # the file first: environment: wins, as in compose
        env += o.parse_env_file(f.text, env_src, source=f.path)
    env += [e for e in (o.parse_env(v, env_src, "environment") for v in svc.environment) if e]
    entrypoint: str | None = None
    args: tuple[str, ...] = svc.command or ()
    if svc.entrypoint is not None:
        # compose's entrypoint list is an argv; docker's --entrypoint is its first word
        entrypoint = svc.entrypoint[0] if svc.entrypoint else ""
        args = svc.entrypoint[1:] + args
    volumes = []
    for v in svc.volumes:
        mode = ":ro" if v.read_only else ""
        if v.kind == "anonymous":
            volumes.append(f"{v.target}{mode}")
        elif v.kind == "volume":
            volumes.append(f"{volume_name(stack, v.source)}:{v.target}{mode}")
        else:
            volumes.append(f"{v.source}:{v.target}{mode}")
    hc = svc.healthcheck
    labels = {**svc.labels, STACK_LABEL: stack.name, SERVICE_LABEL: svc.name}
    opts = RunOptions(
        name=container_name(stack, svc.name),
        entrypoint=entrypoint,
        args=args,
        env=tuple(env),
        workdir=svc.working_dir,
        user=svc.user,
        hostname=svc.hostname,
        volumes=tuple(volumes),
        publish=svc.ports,
        labels=tuple(f"{k}={v}" for k, v in sorted(labels.items())),
        memory=svc.mem_limit,
        cpus=svc.cpus,
        restart=svc.restart,
        health_cmd=hc.test if hc else None,
        health_interval=hc.interval if hc else None,
        health_timeout=hc.timeout if hc else None,
        health_start_period=hc.start_period if hc else None,
        health_retries=str(hc.retries) if hc and hc.retries is not None else None,
        no_healthcheck=bool(hc and hc.disable),
        add_hosts=tuple(f"{name}:{ip}" for name, ip in sorted((hosts or {}).items())),
        host_env={},  # every value is resolved above
    )
    digest = config_digest(svc.image, opts, key)
    return dataclasses.replace(opts, labels=(*opts.labels, f"{CONFIG_LABEL}={digest}"))


def config_digest(image: str, opts: RunOptions, key: bytes = b"") -> str:
    """A digest of what makes the container: a change means recreate it.

    The settings hold the environment's secrets and the label is shown to whoever
    may list containers (on Proxmox, whoever may audit the CT): keyed by the host's
    secret (``stack_key``), it cannot be used to test guesses of a secret."""
    doc = json.dumps([image, dataclasses.asdict(opts)], sort_keys=True, default=str)
    return hmac.new(key, doc.encode(), hashlib.sha256).hexdigest()[:16]


def stack_key(root: Path) -> bytes:
    """The host's key of settings digests (``ROOT/stack.key``, root's alone), made once."""
    path = root / "stack.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    # written whole under another name, then linked: two first `up`s at once both
    # read the key the first link made, never a half-written one
    tmp = root / f".stack.key.{secrets.token_hex(8)}"
    atomic_write(tmp, secrets.token_bytes(32), mode=0o600)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return path.read_bytes()


def stack_containers(backend: Backend, name: str) -> list[ContainerStatus]:
    """The containers labelled as stack ``name``'s, in one read."""
    return [c for c in backend.list() if c.labels.get(STACK_LABEL) == name]


def _by_service(backend: Backend, stack: Stack) -> dict[str, ContainerStatus]:
    return {
        c.labels.get(SERVICE_LABEL, ""): c
        for c in stack_containers(backend, stack.name)
        if c.labels.get(SERVICE_LABEL)
    }


def wait_healthy(backend: Backend, stack: Stack, service: str, deadline: float) -> None:
    """Until ``service``'s container reports healthy; BackendError when it cannot be
    (no healthcheck, stopped, unhealthy) or the deadline passes."""
    name = container_name(stack, service)
    hc = stack.services[service].healthcheck
    if hc is not None and hc.disable:
        raise BackendError(
            f"service {service} has its healthcheck disabled; depend on it with "
            "condition: service_started"
        )
    # right after a start the supervisor has not reported a health yet: "" means
    # "no healthcheck" only when the file gives none and none shows up for a while
    # (the image may have one)
    no_health_by = deadline if hc and hc.test else time.monotonic() + _NO_HEALTH_GRACE
    while True:
        st = backend.status(CtRef(name))
        if st.health == "healthy":
            return
        if st.status not in ("running", "restarting"):
            raise BackendError(
                f"service {service} ({name}) is {st.status} while the stack waits for it "
                f"to become healthy; see `lxcri logs {name}`"
            )
        if st.health == "unhealthy":
            raise BackendError(f"service {service} ({name}) is unhealthy")
        if not st.health and time.monotonic() >= no_health_by:
            raise BackendError(
                f"service {service} ({name}) has no healthcheck; give it one, or depend on it "
                "with condition: service_started"
            )
        if time.monotonic() >= deadline:
            raise BackendError(
                f"service {service} ({name}) did not become healthy in time "
                f"(health: {st.health}); raise --timeout or check its healthcheck"
            )
        time.sleep(_POLL)


def up(
    backend: Backend,
    stack: Stack,
    *,
    health_timeout: float = HEALTH_TIMEOUT,
    host_env: Mapping[str, str] | None = None,
    progress: Progress = _quiet,
    key: bytes = b"",
) -> list[str]:
    """Create and start the stack's services in order; the container names, in that order."""
    order = start_order(stack)
    existing = _by_service(backend, stack)
    hosts: dict[str, str] = {}
    names = []
    for svc_name in order:
        svc = stack.services[svc_name]
        for dep, cond in svc.depends_on.items():
            if cond == "service_healthy":
                progress(f"{svc_name}: waiting for {dep} to be healthy")
                wait_healthy(backend, stack, dep, time.monotonic() + health_timeout)
        opts = run_options(stack, svc, hosts, host_env, key)
        name = opts.name
        ref = CtRef(name)
        old = existing.get(svc_name)
        wanted = dict(o.parse_label(item) for item in opts.labels)[CONFIG_LABEL]
        if old is not None and old.labels.get(CONFIG_LABEL) == wanted:
            if old.status == "running":
                progress(f"{svc_name}: {name} is running")
            else:
                backend.start(ref)
                progress(f"{svc_name}: {name} started")
        else:
            if old is not None:
                backend.remove(CtRef(str(old.vmid)), force=True)
            lifecycle.run(backend, CreateRequest(svc.image, opts), detach=True)
            progress(f"{svc_name}: {name} {'recreated' if old is not None else 'created'}")
        st = backend.status(ref)
        if st.labels.get(STACK_LABEL) != stack.name:
            # `down` and the next `up` find a stack's containers by this label only
            backend.remove(ref, force=True)
            raise BackendError(
                f"the {backend.name} backend does not keep container labels, which stacks "
                "need to find their containers; use the lxc or pve-local backend"
            )
        ip = st.ipv4
        if ip:
            hosts[svc_name] = ip
        names.append(name)
    return names


def down(
    backend: Backend,
    stack: Stack,
    *,
    remove_volume: Callable[[str], bool] | None = None,
    progress: Progress = _quiet,
) -> list[str]:
    """Remove the stack's containers (dependents first) and, given ``remove_volume``,
    its named volumes; what was removed."""
    rank = {svc: i for i, svc in enumerate(start_order(stack))}
    found = stack_containers(backend, stack.name)
    # services no longer in the file (rank -1) first, then the reverse start order
    found.sort(key=lambda c: rank.get(c.labels.get(SERVICE_LABEL, ""), -1), reverse=True)
    found.sort(key=lambda c: c.labels.get(SERVICE_LABEL, "") in rank)
    removed = []
    for c in found:
        backend.remove(CtRef(str(c.vmid)), force=True)
        progress(f"removed container {c.name}")
        removed.append(c.name)
    if remove_volume is not None:
        for key in stack.volumes:
            name = volume_name(stack, key)
            if remove_volume(name):
                progress(f"removed volume {name}")
                removed.append(name)
    return removed


def volume_remover(cfg: Config, backend: Backend) -> Callable[[str], bool]:
    """How ``down --volumes`` removes a named volume on ``backend`` (True: it existed)."""
    if backend.name != "lxc":
        raise BackendError(
            f"down --volumes: removing named volumes is not possible on the {backend.name} "
            "backend yet; remove them with its own tools"
        )
    from lxcri_core.containers import volume_ops
    from lxcri_core.containers.volumes import volumes_dir

    def remove(name: str) -> bool:
        if not (volumes_dir(cfg.root) / name).is_dir():
            return False
        volume_ops.remove_volume(cfg.root, name)
        return True

    return remove


def ps(backend: Backend, stack: Stack) -> list[ContainerStatus]:
    """The stack's containers, in start order (services no longer in the file last)."""
    rank = {svc: i for i, svc in enumerate(start_order(stack))}
    found = stack_containers(backend, stack.name)
    return sorted(found, key=lambda c: rank.get(c.labels.get(SERVICE_LABEL, ""), len(rank)))


def service_container(backend: Backend, stack: Stack, service: str) -> ContainerStatus:
    if service not in stack.services:
        raise LxcriError(f"no service {service!r} in stack {stack.name}")
    for c in stack_containers(backend, stack.name):
        if c.labels.get(SERVICE_LABEL) == service:
            return c
    raise LxcriError(f"service {service} of stack {stack.name} has no container; run `up` first")


def logs(
    backend: Backend,
    stack: Stack,
    services: list[str],
    *,
    follow: bool = False,
    tail: int | None = None,
) -> Iterator[tuple[str, bytes]]:
    """(service, line) from each service's output; without ``follow`` one service after
    another, with it interleaved as they come, until every container has ended."""
    cts = [(s, service_container(backend, stack, s)) for s in services]
    if not follow:
        for svc, ct in cts:
            for line in _lines(lifecycle.logs(backend, CtRef(str(ct.vmid)), tail=tail)):
                yield svc, line
        return
    q: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=1024)

    def pump(svc: str, ref: CtRef) -> None:
        try:
            for line in _lines(lifecycle.logs(backend, ref, follow=True, tail=tail)):
                q.put((svc, line))
        except LxcriError as e:
            q.put((svc, f"lxcri: {e}\n".encode()))
        finally:
            q.put(None)

    for svc, ct in cts:
        threading.Thread(target=pump, args=(svc, CtRef(str(ct.vmid))), daemon=True).start()
    running = len(cts)
    while running:
        # never an untimed wait: the kernel may hand Ctrl-C's SIGINT to a pump thread,
        # and Python runs the handler (KeyboardInterrupt) only when the main thread wakes
        try:
            item = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is None:
            running -= 1
        else:
            yield item


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines from a stream of chunks (the last one may lack its newline)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest + b"\n"


def stop(backend: Backend, stack: Stack) -> list[str]:
    """Stop the stack's running containers, dependents first (``up`` in the foreground
    ends with this, as docker compose's does)."""
    stopped = []
    for c in reversed(ps(backend, stack)):
        if c.status == "running":
            backend.stop(CtRef(str(c.vmid)))
            stopped.append(c.name)
    return stopped
