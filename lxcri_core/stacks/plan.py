"""What a stack becomes: the start order from ``depends_on``, and the names of its
containers and volumes (each carrying the stack's name, as docker compose does)."""

from __future__ import annotations

from lxcri_core.errors import SpecError
from lxcri_core.stacks.model import Stack

#: the label marking a container as one of stack NAME's (``down`` finds them by it)
STACK_LABEL = "io.lxcri.stack"
#: the label naming the container's service
SERVICE_LABEL = "io.lxcri.stack.service"
#: the label holding a digest of the container's settings (``up`` recreates on a change)
CONFIG_LABEL = "io.lxcri.stack.config"


def container_name(stack: Stack, service: str) -> str:
    """``STACK-SERVICE-1``: docker compose's name for a service's one container."""
    return f"{stack.name}-{service}-1"


def volume_name(stack: Stack, volume: str) -> str:
    """``STACK_VOLUME``: docker compose's name for a stack's named volume."""
    return f"{stack.name}_{volume}"


def start_order(stack: Stack) -> list[str]:
    """The services, each after everything it depends on; ties in the file's order.

    A cycle is one error naming it: ``a -> b -> a``.
    """
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" | "done"

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*trail[trail.index(name) :], name]
            raise SpecError(f"services: depends_on makes a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in stack.services[name].depends_on:
            visit(dep, [*trail, name])
        state[name] = "done"
        order.append(name)

    for name in stack.services:
        visit(name, [])
    return order
