"""What ``--output json`` prints: one naming style for every command.

Every command that prints data takes ``--output/-o json|table``; with json,
stdout holds exactly one JSON document and nothing else (a foreground
``run``'s or ``exec``'s own output then goes to stderr), and errors stay
one line each on stderr. The conventions:

- keys are ``snake_case`` (``exit_code``, ``image_digest``, ``media_type``);
- ids and digests are whole (``"sha256:..."``, 64 hex digits for a container);
- times are ISO 8601 in UTC (``2026-11-30T21:30:00+00:00``); "" when unknown;
- sizes are totals in bytes (an int), never "12.3 MB" (that is for tables);
- a published port is an object
  ``{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp"}``
  (``host_ip`` "" means every host address);
- absent values are ``null`` (an exit code before a first run) or empty;
- a command on several objects prints a list, one object per argument, in the
  order given: ``{"name": ..., "id": ..., "error": ""}`` (``error`` says why
  that one failed; the exit status is then 1);
- container inspect is a list of one object, as ``docker inspect`` prints it.

Data that is not lxcri's keeps its own keys: container labels (the user's
keys), an image's ``config`` and ``history`` (the OCI image config as the
image has it, as ``docker image inspect`` shows ``Config``), a healthcheck's
log entries are lxcri's and snake_case.

Commands: images, inspect, import, export, rmi, image prune, pull, push,
unpack, run, create, start, stop, restart, rm/destroy, exec, list, ps, status.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """For the block, what is written to fd 1 (a container's process too) goes to
    stderr, so that stdout holds only the JSON document printed afterwards."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
