"""--output json everywhere, one naming style (plugin/cli/output.py): a walk over every
container and image command's document, with real containers."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.containers.conftest import Lxcri
from tests.support.jsonkeys import bad_keys
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, free_port

pytestmark = pytest.mark.slow


def _json(p: subprocess.CompletedProcess[str], rc: int = 0) -> Any:
    assert p.returncode == rc, p.stderr
    return json.loads(p.stdout)  # stdout is the document and nothing else


def test_every_json_document_is_snake_case(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    port = free_port()
    docs: dict[str, Any] = {}
    docs["create"] = _json(
        lxcri(
            "create",
            "-o",
            "json",
            "--name",
            "j1",
            "-l",
            "Some.Label=x",
            "-p",
            f"127.0.0.1:{port}:80",
            "-e",
            "A=1",
            BUSYBOX_REF,
            "sleep 60",
        )
    )
    assert docs["create"]["name"] == "j1" and len(docs["create"]["id"]) == 64
    lxenv.remember("j1")
    docs["start"] = _json(lxcri("start", "-o", "json", "j1"))
    vmid = docs["create"]["vmid"]
    assert docs["start"] == [{"name": "j1", "id": docs["create"]["id"], "vmid": vmid, "error": ""}]
    docs["ps"] = _json(lxcri("ps", "-o", "json"))
    docs["list"] = _json(lxcri("list", "-o", "json"))
    docs["status"] = _json(lxcri("status", "-o", "json", "j1"))
    docs["inspect"] = _json(lxcri("inspect", "-o", "json", "j1"))
    assert docs["inspect"][0]["network_settings"]["ports"] == [
        {"host_ip": "127.0.0.1", "host_port": port, "container_port": 80, "protocol": "tcp"}
    ]
    p = lxcri("exec", "-o", "json", "j1", "sh", "-c", "echo out-text; exit 5")
    docs["exec"] = _json(p, rc=5)
    assert docs["exec"]["exit_code"] == 5 and "out-text" in p.stderr
    docs["restart"] = _json(lxcri("restart", "-o", "json", "-t", "1", "j1"))
    docs["stop"] = _json(lxcri("stop", "-o", "json", "-t", "1", "j1", "nosuch"), rc=1)
    assert [d["error"] == "" for d in docs["stop"]] == [True, False]
    assert "no such container: nosuch" in docs["stop"][1]["error"]
    p = lxcri("run", "-o", "json", "--rm", BUSYBOX_REF, "echo fg-text; exit 3")
    docs["run"] = _json(p, rc=3)
    assert docs["run"]["exit_code"] == 3 and docs["run"]["removed"] is True
    assert "fg-text" in p.stderr
    docs["run_d"] = _json(lxcri("run", "-d", "-o", "json", "--name", "j2", BUSYBOX_REF, "sleep 60"))
    lxenv.remember("j2")
    assert docs["run_d"]["status"] == "running"
    docs["rm"] = _json(lxcri("rm", "-f", "-o", "json", "j1", "j2"))
    assert [d["name"] for d in docs["rm"]] == ["j1", "j2"]
    docs["images"] = _json(lxcri("images", "-o", "json"))
    docs["image_inspect"] = _json(lxcri("image", "inspect", "-o", "json", BUSYBOX_REF))
    assert docs["image_inspect"]["size"] > 0 and isinstance(docs["image_inspect"]["size"], int)
    bad = {cmd: bad_keys(doc) for cmd, doc in docs.items() if bad_keys(doc)}
    assert bad == {}
    # the walker finds what it should: a user's label key is data, a camelCase key is not
    assert bad_keys({"labels": {"Some.Label": "x"}, "exitCode": 1}) == ["$.exitCode"]


def test_image_commands_json_is_snake_case(lxenv: LxcEnv, lxcri: Lxcri, tmp_path) -> None:
    archive = tmp_path / "bb.tar"
    docs: dict[str, Any] = {}
    docs["export"] = _json(lxcri("export", "-o", "json", BUSYBOX_REF, str(archive)))
    docs["import"] = _json(lxcri("import", "-o", "json", str(archive), "--name", "copy/bb:2"))
    docs["unpack"] = _json(lxcri("unpack", "-o", "json", "copy/bb:2", str(tmp_path / "rootfs")))
    docs["rmi"] = _json(lxcri("rmi", "-o", "json", "copy/bb:2"))
    docs["prune"] = _json(lxcri("image", "prune", "-o", "json"))
    assert isinstance(docs["export"]["size"], int) and isinstance(docs["prune"]["freed"], int)
    assert {cmd: bad_keys(doc) for cmd, doc in docs.items() if bad_keys(doc)} == {}
