"""The public CI (.github/workflows/ci.yml) runs what .ci/run runs and builds
the package with make: no commands of its own beyond installing make."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_make_targets_of_ci_run() -> None:
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith("make test")
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = wf["jobs"].values()
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert ".ci/run" in [r.strip() for r in runs]
    assert any(r.strip().startswith("make deb") for r in runs)
    others = [r for r in runs if r.strip() != ".ci/run" and not r.strip().startswith("make deb")]
    assert all(r.startswith("apt-get update && apt-get install") for r in others), others
    assert {str(d) for d in job["strategy"]["matrix"]["debian"]} == {"trixie", "bookworm"}
