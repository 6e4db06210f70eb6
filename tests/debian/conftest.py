"""The package is built and installed from the host: its Debian roots are
made with debootstrap and entered with the host's tools. Inside the trixie
root of tests/trixie/run (no debhelper, no debootstrap) these tests are not
collected; the host's run of the same `make test` runs them."""

from __future__ import annotations

import os

collect_ignore_glob = ["test_*.py"] if os.environ.get("LXCRI_TRIXIE") else []
