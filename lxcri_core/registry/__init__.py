"""Registry client: the OCI distribution spec (pull, push, auth).

``pull``/``push`` move images between a registry and the local store;
``login``/``logout`` manage stored credentials. ``requests`` is imported
only when a registry is actually contacted.
"""

from lxcri_core.registry.login import login, logout
from lxcri_core.registry.pull import pull
from lxcri_core.registry.push import push

__all__ = ["login", "logout", "pull", "push"]
