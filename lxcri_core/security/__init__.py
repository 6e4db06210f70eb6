"""Container security: capabilities, seccomp, LSMs (AppArmor, SELinux), id maps and the
host's security facts.

Each inspector is a command or a file as data plus a pure ``parse(text)`` that
returns a frozen dataclass (tested from recorded text in tests/data/security);
``read_*`` functions do the I/O and never raise for a missing kernel feature:
what the kernel lacks is reported as unavailable.
"""
