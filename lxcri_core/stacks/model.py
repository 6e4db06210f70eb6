"""A stack as parsed from its file: plain values, checked, not yet applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Condition = Literal["service_started", "service_healthy"]


@dataclass(frozen=True)
class Healthcheck:
    """compose's ``healthcheck``: ``test`` as one shell command (``CMD`` lists are quoted
    into one), the rest as docker's duration strings; ``disable`` turns the image's off."""

    test: str | None = None
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    retries: int | None = None
    disable: bool = False


@dataclass(frozen=True)
class VolumeUse:
    """One entry of a service's ``volumes``.

    ``kind`` ``volume``: ``source`` is the stack's volume key (the real name carries
    the stack name, see ``plan.volume_name``); ``bind``: an absolute host path;
    ``anonymous``: no source.
    """

    kind: Literal["volume", "bind", "anonymous"]
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class EnvFile:
    """An ``env_file`` read at parse time (its path checked to stay in the stack's folder)."""

    path: str
    text: str


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    #: None: the image's; a list as given (a string is split as a shell would, as compose does)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    #: ``NAME=VALUE`` or ``NAME`` (taken from lxcri's own environment when set there)
    environment: tuple[str, ...] = ()
    env_files: tuple[EnvFile, ...] = ()
    #: docker ``-p`` strings (``[IP:][HOST:]CTR[/PROTO]``)
    ports: tuple[str, ...] = ()
    volumes: tuple[VolumeUse, ...] = ()
    depends_on: dict[str, Condition] = field(default_factory=dict)
    restart: str | None = None
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    mem_limit: str | None = None
    cpus: str | None = None


@dataclass(frozen=True)
class Stack:
    #: the ``name:`` key, else the folder's name made fit (as docker compose does)
    name: str
    #: the folder holding the stack file: relative paths are taken from it
    folder: Path
    services: dict[str, Service]
    #: the keys of the top-level ``volumes:`` (names without the stack prefix)
    volumes: tuple[str, ...] = ()
