"""The pct-style ``lxcri`` command line."""
