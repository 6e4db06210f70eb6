"""The plain-LXC container operations, as one module: a compatibility view.

The work is split by job (``create``, ``netplan``, ``lifecycle``, ``remove``,
``listing``, ``exec``); front ends use ``lxcri_core.backend.open_backend``
(``LxcBackend``), and older callers and tests keep importing this module.
"""

from __future__ import annotations

from lxcri_core.backend import ExecCommand
from lxcri_core.containers.create import create
from lxcri_core.containers.exec import EXEC_ENV_PREFIX, exec_argv, logs_path
from lxcri_core.containers.lifecycle import (
    NO_NAMESPACES_HINT,
    restart,
    run_foreground,
    start,
    start_error,
    stop,
)
from lxcri_core.containers.listing import (
    ContainerStatus,
    find,
    list_containers,
    port_text,
    status,
)
from lxcri_core.containers.locks import _raise_terminated, _term_raises, _Terminated
from lxcri_core.containers.netplan import ensure_bridge_for
from lxcri_core.containers.record import lxcpath
from lxcri_core.containers.remove import remove
from lxcri_core.containers.runstate import SUPERVISOR_CONFIG, supervisor_pid

__all__ = [
    "EXEC_ENV_PREFIX",
    "NO_NAMESPACES_HINT",
    "SUPERVISOR_CONFIG",
    "ContainerStatus",
    "ExecCommand",
    "_Terminated",
    "_raise_terminated",
    "_term_raises",
    "create",
    "ensure_bridge_for",
    "exec_argv",
    "find",
    "list_containers",
    "logs_path",
    "lxcpath",
    "port_text",
    "remove",
    "restart",
    "run_foreground",
    "start",
    "start_error",
    "status",
    "stop",
    "supervisor_pid",
]
