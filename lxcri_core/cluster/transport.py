"""How lxcri reaches a cluster node: a command runner per node, and the stream pump.

A node is this host (``LocalNode``: two pools on one host, as in the tests)
or another cluster member reached as ``ssh root@ADDRESS`` (``SshNode``), the
root SSH between members that Proxmox's own storage replication and
migration use. Either turns an argv into the argv that runs it on the node,
so every ``zfs`` call of the replication is plain data (lxcri_core.runner).

``pump`` connects a ``zfs send`` on one node to a ``zfs recv`` on another
and counts the stream's bytes. Neither OpenZFS's nor zfs-fuse's ``zfs send``
can limit its rate, so the pump does (Proxmox puts ``cstream -t`` in the
pipe for the same reason); that keeps the count and the limit in one place
and needs no extra package on the nodes. With ``compress`` it also zstd-
compresses the stream (zfs-fuse's ``zfs send`` has no ``-c``), and the
receiver runs ``zstd -d`` in front of ``zfs recv`` (Proxmox VE ships zstd):
a layer crosses the wire about as small as its compressed blob.
"""

from __future__ import annotations

import abc
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxcri_core.errors import StorageError
from lxcri_core.runner import CmdResult, SubprocessRunner, failure_detail

#: How much of the stream the pump moves per read.
CHUNK = 1 << 20
#: How long a finished stream waits for ``zfs recv`` to commit the received snapshot.
RECV_TIMEOUT = 600.0
#: Seconds ssh waits for a node to answer (a node that is down fails fast).
CONNECT_TIMEOUT = 15


class Node(abc.ABC):
    """A cluster node: a name, and how a command is run there (``LocalNode``, ``SshNode``)."""

    name: str

    @abc.abstractmethod
    def argv(self, cmd: Sequence[str]) -> list[str]:
        """The argv that runs ``cmd`` on this node."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        """A ``Runner``: run ``argv`` on this node (non-zero exits are results)."""
        run = SubprocessRunner(StorageError, "install it on the node", timeout=RECV_TIMEOUT)
        return run(self.argv(argv), stdin)


@dataclass
class LocalNode(Node):
    """This host."""

    name: str = "localhost"

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return list(cmd)


@dataclass
class SshNode(Node):
    """A node reached as ``ssh root@address``.

    ``BatchMode`` makes a missing key or an unknown host key fail at once
    instead of prompting; host keys are checked (``known_hosts`` names the
    file, as Proxmox's /etc/pve/priv/known_hosts, with the node name as
    ``HostKeyAlias``) and never learnt on the fly.
    """

    name: str
    address: str
    user: str = "root"
    port: int = 22
    identity: Path | None = None
    known_hosts: Path | None = None
    options: list[str] = field(default_factory=list)

    def argv(self, cmd: Sequence[str]) -> list[str]:
        out = ["ssh", "-e", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        out += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
        out += ["-o", f"HostKeyAlias={self.name}", "-p", str(self.port)]
        if self.known_hosts is not None:
            out += [
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "GlobalKnownHostsFile=none",
            ]
        if self.identity is not None:
            out += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        out += [*self.options, f"{self.user}@{self.address}", "--"]
        # ssh hands the remote shell one string: quote every word of it
        out.append(shlex.join(cmd))
        return out


@dataclass
class Streamed:
    """What ``pump`` moved: ``bytes`` on the wire, ``stream_bytes`` of ``zfs send``."""

    bytes: int
    seconds: float
    stream_bytes: int = 0


def decompressing(recv: Sequence[str]) -> list[str]:
    """``recv`` behind ``zstd -d``: a truncated or corrupt stream still fails ``zfs recv``."""
    return ["sh", "-c", 'zstd -dcq | exec "$@"', "sh", *recv]


def pump(
    src: Node,
    send: Sequence[str],
    dst: Node,
    recv: Sequence[str],
    bwlimit: int | None = None,
    compress: bool = False,
) -> Streamed:
    """Run ``send`` on ``src`` into ``recv`` on ``dst``; StorageError if either fails.

    ``bwlimit`` is in bytes per second. A killed sender gives the receiver a
    truncated stream, which ``zfs recv`` rejects; a killed receiver breaks
    the pipe: both are errors here, never a partial success.
    """
    if bwlimit is not None and bwlimit <= 0:
        raise StorageError(f"bandwidth limit {bwlimit} must be a positive number of bytes/s")
    start = time.monotonic()
    moved = raw = 0
    squeeze = None
    if compress:
        import zstandard

        squeeze = zstandard.ZstdCompressor(level=3).compressobj()
        recv = decompressing(recv)
    # stderr to files: a chatty command must not block on a full pipe mid-stream
    with tempfile.TemporaryFile() as serr, tempfile.TemporaryFile() as rerr:
        try:
            sender = subprocess.Popen(
                src.argv(send), stdout=subprocess.PIPE, stderr=serr, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError as e:
            raise StorageError(f"{e.filename} is not installed") from None
        try:
            receiver = subprocess.Popen(
                dst.argv(recv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=rerr
            )
        except FileNotFoundError as e:
            sender.kill()
            sender.wait()
            raise StorageError(f"{e.filename} is not installed") from None
        assert sender.stdout is not None and receiver.stdin is not None
        broken = False
        try:
            eof = False
            while not eof:
                chunk = os.read(sender.stdout.fileno(), CHUNK)
                raw += len(chunk)
                eof = not chunk
                if squeeze is not None:
                    chunk = squeeze.compress(chunk) if chunk else squeeze.flush()
                if not chunk:
                    continue  # the end, or the compressor is still gathering
                try:
                    receiver.stdin.write(chunk)
                except BrokenPipeError:
                    broken = True
                    break
                moved += len(chunk)
                if bwlimit:
                    ahead = moved / bwlimit - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            if broken:
                sender.kill()
            try:
                receiver.stdin.close()
            except BrokenPipeError:
                broken = True
            src_rc = sender.wait()
            try:
                dst_rc = receiver.wait(timeout=RECV_TIMEOUT)
            except subprocess.TimeoutExpired:
                receiver.kill()
                dst_rc = receiver.wait()
        if src_rc != 0 or dst_rc != 0 or broken:
            serr.seek(0)
            rerr.seek(0)
            why = [
                f"`{shlex.join(cmd)}` on {node.name}: "
                + failure_detail(CmdResult(rc, "", f.read().decode(errors="replace")))
                for cmd, node, rc, f in ((send, src, src_rc, serr), (recv, dst, dst_rc, rerr))
                if rc != 0
            ]
            raise StorageError(
                "zfs stream failed: " + ("; ".join(why) or "the receiver closed the stream early")
            )
    return Streamed(moved, time.monotonic() - start, raw)
