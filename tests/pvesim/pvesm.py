"""pvesm: ``pvesm status [--content C] [--enabled] [--storage ID] [--target N] [--format F]``.

``status`` is PVE::CLI::pvesm's: ``GET /nodes/{node}/storage`` (checked
against the same schema as the API) printed by its print_status, a header
then one storage a line, sorted by id, sizes in KiB (``/1024``, truncated as
Perl's ``%d`` does), ``disabled`` and ``N/A`` for a disabled storage.
"""

from __future__ import annotations

from typing import Any

from tests.pvesim import cli

TEMPLATE = "/nodes/{node}/storage"


def print_status(res: list[dict[str, Any]]) -> str:
    maxlen = max([len(str(r["storage"])) for r in res] + [0]) + 1
    out = [
        f"{'Name':<{maxlen}} {'Type':>10} {'Status':>10} {'Total':>15} {'Used':>15} "
        f"{'Available':>15} {'%':>8}"
    ]
    for r in sorted(res, key=lambda r: str(r["storage"])):
        active = "active" if r.get("active") else "inactive"
        total, used, avail = (int(r.get(k) or 0) for k in ("total", "used", "avail"))
        per = f"{(used * 100 / total if total > 0 else 0):7.2f}%"
        if not r.get("enabled", 1):
            per, active = f"{'N/A':>8}", "disabled"
        out.append(
            f"{r['storage']:<{maxlen}} {r['type']:>10} {active:>10} {total // 1024:>15} "
            f"{used // 1024:>15} {avail // 1024:>15} {per}"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "status":
        raise cli.UsageError("USAGE: pvesm status [OPTIONS] (the only pvesm command simulated)")
    sim = cli.sim_from_env()
    opts, rest = cli.get_options(cli.props_of(TEMPLATE, "GET"), argv[1:])
    if rest:
        raise cli.UsageError("400 too many arguments")
    data = cli.call(sim, "GET", TEMPLATE.replace("{node}", sim.node), opts)
    print(print_status(data), end="")
    return 0


if __name__ == "__main__":
    cli.main_entry(main)
