"""ContainerSpec: the neutral container description and its renderers."""
