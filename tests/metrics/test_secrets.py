"""Secrets in the config and the environment reach no log file, no stderr and no argv.

A registry password (config ``auths``, ``login --password-stdin``) and the
Proxmox credentials (an API token in the environment and in the token file,
the root password in ``LXCRI_PVE_PASSWORD``) are set; commands run at debug
level, in both log formats, a container runs with its supervisor and hooks,
the exporter is scraped; then every log file under the state roots, every
output, and ``ps`` while it all ran are searched for them.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_lxcri
from tests.metrics.conftest import start_exporter, stop_exporter
from tests.pvesim.fixtures import PveSim, pvesim  # noqa: F401 - fixture
from tests.support.images import busybox_image
from tests.support.lxcenv import LxcEnv
from tests.support.registry import push_image, start_registry, write_authfile

pytestmark = pytest.mark.slow

USER, REG_PW = "carol", "Reg-s3cret-7f1c9e"


def _ps() -> str:
    return subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout


def _log_files(*roots: Path) -> list[Path]:
    return sorted(
        p
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and ".log" in p.name
    )


def test_no_secret_in_logs_output_or_argv(
    lxenv: LxcEnv,
    pvesim: PveSim,  # noqa: F811 - the fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_secret = pvesim.token.split("=", 1)[1]
    pve_pw = pvesim.root_password()
    secrets = {
        "registry password": REG_PW,
        "registry basic auth": base64.b64encode(f"{USER}:{REG_PW}".encode()).decode(),
        "PVE token secret": token_secret,
        "PVE root password": pve_pw,
    }
    with monkeypatch.context() as m:  # docker-registry reads REGISTRY_* as its config
        m.delenv("REGISTRY_AUTH_FILE", raising=False)
        reg = start_registry(tmp_path / "reg", users={USER: REG_PW})
    said: list[str] = []
    ps: list[str] = []
    try:
        authfile = write_authfile(tmp_path / "push-auth.json", reg.addr, USER, REG_PW)
        push_image(reg.addr, busybox_image(), "private/bb:1.0", tmp_path, authfile=authfile)
        conf = Path(os.environ["LXCRI_CONFIG"])
        conf.write_text(
            conf.read_text()
            + f"registries:\n  insecure: ['{reg.addr}']\n"
            + f"auths:\n  '{reg.addr}': {{username: {USER}, password: '{REG_PW}'}}\n"
        )
        env = {**lxenv.env, "LXCRI_LOG_LEVEL": "debug", "LXCRI_PVE_PASSWORD": pve_pw}
        ref = f"{reg.addr}/private/bb:1.0"

        def lxcri(*args: str, input: str | None = None, extra: dict[str, str] | None = None) -> int:
            p = run_lxcri(*args, input=input, env={**env, **(extra or {})}, timeout=120)
            said.extend([p.stdout, p.stderr])
            return p.returncode

        assert lxcri("pull", ref) == 0
        assert lxcri("--log-format", "json", "pull", ref) == 0
        assert lxcri("pull", f"{reg.addr}/private/none:1.0") == 1  # an error, with its URL
        assert lxcri("login", "-u", USER, "--password-stdin", reg.addr, input=REG_PW + "\n") == 0
        assert lxcri("login", "-u", USER, "--password-stdin", reg.addr, input="wrong\n") == 1
        assert lxcri("run", "-d", "--name", "sec1", ref, "sleep", "300") == 0
        lxenv.remember("sec1")
        exp = start_exporter({**env}, tmp_path / "exporter.log")
        try:
            said.append(exp.scrape().text)
            ps.append(_ps())
        finally:
            stop_exporter(exp)
        assert lxcri("logs", "--hooks", "sec1") == 0
        assert lxcri("logs", "sec1") == 0
        assert lxcri("stop", "-t", "1", "sec1") == 0
        # the Proxmox API: by token (file and environment) and by password
        sim_env = pvesim.lxcri_env(tmp_path / "pve", backend="pve-api")
        assert lxcri("list", extra=sim_env) == 0
        assert (
            lxcri(
                "--log-format", "json", "list", extra={**sim_env, "LXCRI_PVE_TOKEN": pvesim.token}
            )
            == 0
        )
        by_pw = {**sim_env, "LXCRI_PVE_TOKEN_FILE": ""}
        assert lxcri("list", extra=by_pw) == 0
        assert lxcri("list", extra={**by_pw, "LXCRI_PVE_PASSWORD": pve_pw + "x"}) == 1
        # a password pasted into the URL: refused, and the refusal does not repeat it
        url = f"https://root%40pam:{pve_pw}@127.0.0.1:{pvesim.port}"
        assert lxcri("list", extra={**sim_env, "LXCRI_PVE_URL": url}) == 1
        assert "must be https://HOST[:PORT]" in said[-1]
        ps.append(_ps())
    finally:
        reg.stop()
    files = _log_files(lxenv.root, tmp_path)
    names = {p.name for p in files}
    assert {"hooks.log", "supervisor.log", "console.log", "exporter.log"} <= names, names
    texts = {str(p): p.read_text(errors="replace") for p in files}
    texts.update({f"output {i}": t for i, t in enumerate(said)})
    texts.update({f"ps {i}": t for i, t in enumerate(ps)})
    leaks = [
        f"{what} in {where}"
        for where, text in texts.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not leaks, leaks
