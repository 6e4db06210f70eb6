"""lxcri core library: images, registry, store, unpacking, specs, backends.

Never imports click, rich or textual (a test enforces it): the CLI, the
dashboard and the hooks all sit on top of this package.
"""

__version__ = "0.1.0"
