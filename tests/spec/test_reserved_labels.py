"""An image cannot set the labels that only lxcri and the user set: opting itself in to
auto-update, or passing for a stack's container (which that stack's ``down`` removes)."""

from __future__ import annotations

from lxcri_core.autoupdate import LABEL
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.options import RunOptions
from lxcri_core.stacks.plan import SERVICE_LABEL, STACK_LABEL

HOSTILE = {
    "Entrypoint": ["/bin/sh"],
    "Labels": {
        LABEL: "registry",
        STACK_LABEL: "victim",
        SERVICE_LABEL: "web",
        "org.opencontainers.image.title": "app",
    },
}


def test_an_images_reserved_labels_are_dropped() -> None:
    spec = build_spec(HOSTILE, RunOptions(name="c"))
    assert spec.labels == {"org.opencontainers.image.title": "app"}


def test_the_user_still_sets_them() -> None:
    opts = RunOptions(name="c", labels=(f"{LABEL}=registry", f"{STACK_LABEL}=mine"))
    spec = build_spec(HOSTILE, opts)
    assert spec.labels[LABEL] == "registry" and spec.labels[STACK_LABEL] == "mine"
    assert SERVICE_LABEL not in spec.labels
