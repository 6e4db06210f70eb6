"""`ps --filter` and inspect's env masking: pure functions, from tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lxcri_core.containers.filters import matches, parse_filters
from lxcri_core.containers.inspect import mask_env
from lxcri_core.errors import SpecError

DIGEST = "sha256:" + "ab12" * 16


@dataclass
class Ct:
    name: str = "web1"
    id: str = "f00d" + "0" * 60
    status: str = "running"
    image: str = "docker.io/library/nginx:1.27"
    image_digest: str = DIGEST
    labels: dict[str, str] = field(default_factory=lambda: {"app": "web", "empty": ""})


@pytest.mark.parametrize(
    ("filters", "want"),
    [
        ([], True),
        (["name=eb"], True),
        (["name=db"], False),
        (["name=db", "name=web"], True),  # one key: any value
        (["id=f00d"], True),
        (["id=beef"], False),
        (["status=running"], True),
        (["status=exited"], False),
        (["label=app"], True),
        (["label=app=web"], True),
        (["label=app=we"], False),
        (["label=empty="], True),
        (["label=nope"], False),
        (["ancestor=nginx:1.27"], True),
        (["ancestor=docker.io/library/nginx:1.27"], True),
        (["ancestor=nginx"], False),  # nginx:latest, as docker reads it
        (["ancestor=ab12ab12"], True),
        (["ancestor=sha256:ab12"], True),
        (["ancestor=cd34"], False),
        ([f"ancestor=nginx@{DIGEST}"], True),
        (["label=app", "status=exited"], False),  # keys: all
    ],
)
def test_filters(filters, want):
    assert matches(Ct(), parse_filters(filters)) is want


@pytest.mark.parametrize(
    "bad", ["colour=red", "status=dead", "label=", "nameweb", "ancestor=", "id="]
)
def test_bad_filters_are_refused(bad):
    with pytest.raises(SpecError, match="--filter"):
        parse_filters([bad])


def test_env_values_not_from_the_image_are_masked():
    env = ("PATH=/bin", "TOKEN=abc", "PATH2=/x", "FLAG", "EMPTY=")
    assert mask_env(env, {"PATH=/bin"}) == [
        "PATH=/bin",
        "TOKEN=***",
        "PATH2=***",
        "FLAG",
        "EMPTY=***",
    ]
    # the image gone from the store: every value hidden
    assert mask_env(("PATH=/bin",), None) == ["PATH=***"]
    # an image variable given another value is the container's own
    assert mask_env(("PATH=/evil",), {"PATH=/bin"}) == ["PATH=***"]
