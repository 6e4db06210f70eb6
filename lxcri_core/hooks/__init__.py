"""LXC hook logic. The executable in hooks/ parses its context and imports
the rest of this package only for containers lxcri manages."""
