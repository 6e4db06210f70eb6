"""The stack file's schema check, pure: every key in both its forms, each error with
the path of the bad value, and the hostile files (alias bombs, escapes from the folder)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.stacks.model import EnvFile, Healthcheck, Service, Stack, VolumeUse
from lxcri_core.stacks.parse import load_stack, parse_stack
from lxcri_core.stacks.yaml_load import MAX_FILE, load_yaml


def stack_at(tmp_path: Path, text: str, name: str = "stack.yaml") -> Stack:
    path = tmp_path / name
    path.write_text(text)
    return load_stack(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as e:
        stack_at(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg
    prefix = f"{tmp_path / 'stack.yaml'}: "
    assert msg.startswith(prefix)
    return msg[len(prefix) :]


EVERY_KEY = """\
version: "3.8"
name: shop
services:
  web:
    image: localhost/web:1
    command: ["serve", "--port", "80"]
    entrypoint: /bin/app --verbose
    environment:
      - MODE=prod
      - FROM_HOST
    env_file: web.env
    ports:
      - "8080:80"
      - 127.0.0.1:8443:443/tcp
      - 9000
      - target: 53
        published: 5353
        host_ip: 127.0.0.1
        protocol: udp
    volumes:
      - data:/var/lib/data
      - ./static:/srv/static:ro
      - /etc/ssl/certs:/certs:ro
      - /cache
      - type: volume
        source: data
        target: /backup
        read_only: true
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "wget", "-q", "http://127.0.0.1/"]
      interval: 10s
      timeout: 3s
      start_period: 1m
      retries: 5
    hostname: web.shop.lan
    user: "1000:1000"
    working_dir: /srv
    labels:
      tier: front
    mem_limit: 256m
    cpus: 0.5
  db:
    image: localhost/db:1
    environment:
      PASSWORD: secret
      PORT: 5432
      DEBUG: false
      FROM_HOST:
    labels: ["a=1", "b"]
    healthcheck:
      test: pg_isready
    restart: "no"
    user: 999
    mem_limit: 1073741824
    cpus: "2"
  cache:
    image: localhost/cache:1
    depends_on: [db]
    healthcheck:
      disable: true
volumes:
  data:
  unused: {}
"""


def test_every_key_in_both_forms(tmp_path: Path) -> None:
    (tmp_path / "web.env").write_text("# comment\nA=1\nB=two words \n")
    (tmp_path / "static").mkdir()
    st = stack_at(tmp_path, EVERY_KEY)
    assert st.name == "shop" and st.folder == tmp_path and st.volumes == ("data", "unused")
    assert list(st.services) == ["web", "db", "cache"]
    assert st.services["web"] == Service(
        name="web",
        image="localhost/web:1",
        command=("serve", "--port", "80"),
        entrypoint=("/bin/app", "--verbose"),
        environment=("MODE=prod", "FROM_HOST"),
        env_files=(EnvFile("web.env", "# comment\nA=1\nB=two words \n"),),
        ports=("8080:80", "127.0.0.1:8443:443/tcp", "9000", "127.0.0.1:5353:53/udp"),
        volumes=(
            VolumeUse("volume", "data", "/var/lib/data"),
            VolumeUse("bind", str(tmp_path / "static"), "/srv/static", True),
            VolumeUse("bind", "/etc/ssl/certs", "/certs", True),
            VolumeUse("anonymous", "", "/cache"),
            VolumeUse("volume", "data", "/backup", True),
        ),
        depends_on={"db": "service_healthy", "cache": "service_started"},
        restart="unless-stopped",
        healthcheck=Healthcheck("wget -q http://127.0.0.1/", "10s", "3s", "1m", 5),
        hostname="web.shop.lan",
        user="1000:1000",
        working_dir="/srv",
        labels={"tier": "front"},
        mem_limit="256m",
        cpus="0.5",
    )
    db = st.services["db"]
    assert db.environment == ("PASSWORD=secret", "PORT=5432", "DEBUG=false", "FROM_HOST")
    assert db.labels == {"a": "1", "b": ""}
    assert db.healthcheck == Healthcheck(test="pg_isready")
    assert (db.restart, db.user, db.mem_limit, db.cpus) == ("no", "999", "1073741824", "2")
    cache = st.services["cache"]
    assert cache.depends_on == {"db": "service_started"}
    assert cache.healthcheck == Healthcheck(disable=True)


def test_yaml_1_1_surprises_are_off(tmp_path: Path) -> None:
    # unquoted 80:80 is the base-60 number 4880 in YAML 1.1; `no` a boolean
    st = stack_at(
        tmp_path,
        "name: s\nservices:\n  a:\n    image: i\n    ports: [80:80, 1:20]\n    restart: no\n"
        "    environment: {A: yes, B: off, C: 2001-01-01}\n",
    )
    a = st.services["a"]
    assert a.ports == ("80:80", "1:20") and a.restart == "no"
    assert a.environment == ("A=yes", "B=off", "C=2001-01-01")


def test_healthcheck_test_forms(tmp_path: Path) -> None:
    def test_of(value: str) -> Healthcheck | None:
        st = stack_at(tmp_path, f"name: s\nservices:\n  a:\n    image: i\n    healthcheck:\n"
                      f"      test: {value}\n")  # fmt: skip
        return st.services["a"].healthcheck

    assert test_of('["CMD-SHELL", "curl -f x || exit 1"]') == Healthcheck("curl -f x || exit 1")
    assert test_of('["CMD", "echo", "a b"]') == Healthcheck("echo 'a b'")
    assert test_of('["NONE"]') == Healthcheck(disable=True)


def test_compose_extras_accepted_and_name_from_folder(tmp_path: Path) -> None:
    folder = tmp_path / "My Project.v2"
    folder.mkdir()
    text = "version: '3'\nx-base: &base\n  image: busybox\nservices:\n  a:\n    <<: *base\n"
    st = stack_at(folder, text, "docker-compose.yml")
    assert st.name == "myprojectv2"
    assert st.services["a"].image == "busybox"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("networks: {}\nservices: {a: {image: i}}", "networks: unknown key 'networks'"),
        ("services: {a: {image: i, build: .}}", "services.a.build: unknown key 'build'"),
        ("services: {a: {image: i, privileged: true}}", "services.a.privileged: unknown key"),
        ("services: {a: {image: i, healthcheck: {test: x, start_interval: 1s}}}",
         "services.a.healthcheck.start_interval: unknown key 'start_interval'"),
        ("services: {a: {image: i, ports: ['80', '99999:80']}}",
         "services.a.ports[1]: invalid -p value '99999:80'"),
        ("services: {a: {image: i, ports: [{published: 80}]}}",
         "services.a.ports[0]: the long form needs target:"),
        ("services: {a: {image: i, ports: [{target: 80, mode: host}]}}",
         "services.a.ports[0].mode: unknown key 'mode'"),
        ("services: {a: {image: i, ports: 80}}", "services.a.ports: expected a list, got a number"),
        ("services: {a: {command: x}}", "services.a: image: is required"),
        ("services: {a: {image: 5}}", "services.a.image: expected a string, got a number"),
        ("services: {a: {image: i, environment: ['A B=1']}}", "services.a.environment[0]:"),
        ("services: {a: {image: i, environment: {A: [1]}}}",
         "services.a.environment.A: expected a string, got a list"),
        ("services: {a: {image: i, volumes: [data:/d]}}",
         "services.a.volumes[0]: volume 'data' is not declared in the top-level volumes:"),
        ("services: {a: {image: i, volumes: ['/d:/e:z']}}",
         "services.a.volumes[0]: '/d:/e:z': unknown mode 'z'"),
        ("services: {a: {image: i, volumes: ['/d:rel']}}",
         "services.a.volumes[0]: invalid volumes value 'rel': container path 'rel' must be"),
        ("services: {a: {image: i, volumes: ['/x/../etc:/e']}}",
         "services.a.volumes[0]: host path '/x/../etc' must not contain '..'"),
        ("services: {a: {image: i, volumes: [{type: tmpfs, target: /t}]}}",
         "services.a.volumes[0].type: 'tmpfs': lxcri stacks know volume and bind"),
        ("services: {a: {image: i, depends_on: [b]}}",
         "services.a.depends_on: no service named 'b'"),
        ("services: {a: {image: i, depends_on: [a]}}",
         "services.a.depends_on: a service cannot depend on itself"),
        ("services: {a: {image: i, depends_on: {b: {condition: service_completed_successfully}}},"
         " b: {image: i}}",
         "services.a.depends_on.b.condition: 'service_completed_successfully': lxcri stacks"),
        ("services: {a: {image: i, depends_on: {b: {required: true}}}, b: {image: i}}",
         "services.a.depends_on.b.required: unknown key 'required'"),
        ("services: {a: {image: i, restart: sometimes}}",
         "services.a.restart: invalid --restart value 'sometimes'"),
        ("services: {a: {image: i, healthcheck: {test: [CMD]}}}",
         "services.a.healthcheck.test: CMD needs a command after it"),
        ("services: {a: {image: i, healthcheck: {test: [RUN, x]}}}",
         "services.a.healthcheck.test: a list starts with CMD, CMD-SHELL or NONE"),
        ("services: {a: {image: i, healthcheck: {test: x, interval: soon}}}",
         "services.a.healthcheck.interval: invalid interval value 'soon'"),
        ("services: {a: {image: i, healthcheck: {test: x, retries: -1}}}",
         "services.a.healthcheck.retries: expected a whole number"),
        ("services: {a: {image: i, hostname: 'a b'}}",
         "services.a.hostname: invalid hostname value 'a b'"),
        ("services: {a: {image: i, user: 'a:b:c'}}", "services.a.user: invalid --user value"),
        ("services: {a: {image: i, working_dir: srv}}",
         "services.a.working_dir: invalid working_dir value 'srv': container path"),
        ("services: {a: {image: i, labels: {io.lxcri.stack: other}}}",
         "services.a.labels.io.lxcri.stack: label 'io.lxcri.stack' is lxcri's own"),
        ("services: {a: {image: i, mem_limit: 1k}}",
         "services.a.mem_limit: invalid mem_limit value '1k': the minimum memory limit is 6m"),
        ("services: {a: {image: i, cpus: lots}}", "services.a.cpus: invalid --cpus value 'lots'"),
        ("services: {a: {image: i, env_file: /etc/shadow}}",
         "services.a.env_file: '/etc/shadow' must be a path relative to the stack's folder"),
        ("services: {a: {image: i, env_file: [../x.env]}}",
         "services.a.env_file: '../x.env' must not leave the stack's folder ('..')"),
        ("services: {my_db: {image: i}}", "services.my_db: service name 'my_db': use letters"),
        ("services: {LocalHost: {image: i}}",
         "services.LocalHost: service name 'LocalHost' is a name /etc/hosts keeps"),
        ("services: {a: {image: i}}\nvolumes: {data: {external: true}}",
         "volumes.data.external: unknown key 'external'"),
        ("services: {a: {image: i}}\nvolumes: {'bad/name': null}",
         "volumes.bad/name: volume name 'bad/name'"),
        ("name: Shop\nservices: {a: {image: i}}", "name: 'Shop': use lower-case letters"),
        ("name: s\nservices: {" + "a" * 62 + ": {image: i}}",
         "invalid container name for services." + "a" * 62),
        ("services: {}", "services: at least one service is required"),
        ("services: [a]", "services: expected a mapping, got a list"),
        ("services: {a: {image: i}}\nservices: {b: {image: i}}",
         "line 3: key 'services' is given twice"),
        ("services: {a: {image: i, ports: [1}", "line 2: not valid YAML"),
    ],
)  # fmt: skip
def test_errors_name_the_path(tmp_path: Path, text: str, expected: str) -> None:
    msg = error(tmp_path, "name: s\n" + text if not text.startswith("name:") else text)
    assert msg.startswith(expected) or expected in msg, msg


def test_billion_laughs_is_refused_at_once() -> None:
    text = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 12):  # 10**12 values once expanded
        text += f"l{i}: &l{i} [" + ",".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 10) + "]\n"
    start = time.monotonic()
    with pytest.raises(SpecError, match="more than 100000 values after expanding YAML aliases"):
        load_yaml(text, "s.yaml")
    assert time.monotonic() - start < 2


def test_recursive_alias_and_deep_nesting_and_size_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="refers to itself"):
        load_yaml("a: &a [*a]\n", "s")
    with pytest.raises(SpecError, match="nested too deeply"):
        load_yaml("[" * 100_000 + "]" * 100_000, "s")
    big = tmp_path / "stack.yaml"
    big.write_text("#" * (MAX_FILE + 1))
    with pytest.raises(SpecError, match="larger than"):
        load_stack(big)


def test_env_file_symlinks_out_of_the_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text("ROOT_PW=hunter2\n")
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "link.env").symlink_to(outside / "secret.env")
    (folder / "dir").symlink_to(outside)
    for rel in ("link.env", "dir/secret.env"):
        (folder / "stack.yaml").write_text(f"services: {{a: {{image: i, env_file: {rel}}}}}\n")
        with pytest.raises(SpecError, match="a symbolic link or a non-directory is on the way"):
            load_stack(folder / "stack.yaml")
    # a relative bind source may not leave by a symlink either
    (folder / "stack.yaml").write_text("services: {a: {image: i, volumes: ['./dir:/x']}}\n")
    with pytest.raises(SpecError, match=r"services.a.volumes\[0\]: './dir': a symbolic link"):
        load_stack(folder / "stack.yaml")


def test_env_file_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.env")
    msg = error(tmp_path, "services: {a: {image: i, env_file: f.env}}\n")
    assert msg == "services.a.env_file: 'f.env' is not a regular file"


def test_env_file_bad_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("OK=1\nNOT VALID=2\n")
    msg = error(tmp_path, "services: {a: {image: i, env_file: a.env}}\n")
    assert msg.startswith("services.a.env_file: invalid a.env line 2 value 'NOT VALID=2'"), msg


def test_a_file_with_no_name_in_a_folder_without_a_usable_name(tmp_path: Path) -> None:
    folder = tmp_path / "__"
    folder.mkdir()
    with pytest.raises(SpecError, match="makes no stack name; add a name: key"):
        parse_stack({"services": {"a": {"image": "i"}}}, folder)


def test_interpolation_as_compose_does_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('# defaults\nTAG="1.2"\nPORT=8080\nexport MODE=dev\n')
    text = (
        "name: s\nservices:\n  a:\n    image: web:${TAG}\n"
        "    ports: ['${PORT}:80', '${OTHER:-9090}:90']\n"
        "    command: [sh, -c, 'echo $$HOME ${MODE} ${EMPTY:-d1} ${EMPTY-d2} ${MODE:+on}']\n"
    )
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    a = load_stack(path, env={"PORT": "8181", "EMPTY": ""}).services["a"]
    # the environment over .env; $$ is one literal $ for the container's shell
    assert a.image == "web:1.2" and a.ports == ("8181:80", "9090:90")
    assert a.command == ("sh", "-c", "echo $HOME dev d1  on")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${NEEDED:?set it first}", "services.a.image: variable NEEDED is not set: set it first"),
        ("a$1", "services.a.image: invalid variable at '$1'"),
        ("${a b}", "services.a.image: invalid variable at '${a b}'"),
    ],
)
def test_interpolation_errors_name_the_path(tmp_path: Path, value: str, expected: str) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(f"name: s\nservices: {{a: {{image: '{value}'}}}}\n")
    with pytest.raises(SpecError) as e:
        load_stack(path, env={})
    assert str(e.value).startswith(f"{path}: {expected}"), str(e.value)


def test_dotenv_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("A=1\n")
    (tmp_path / ".env").symlink_to(tmp_path / "secret")
    with pytest.raises(SpecError, match=r"\.env: '\.env': a symbolic link"):
        stack_at(tmp_path, "services: {a: {image: i}}\n")


def test_a_long_string_used_by_many_aliases_is_refused() -> None:
    text = 's: &s "' + "x" * 200_000 + '"\nl: [' + ", ".join(["*s"] * 100) + "]\n"
    with pytest.raises(SpecError, match="characters after expanding YAML aliases"):
        load_yaml(text, "s")


def test_interpolation_cannot_make_gigabytes_of_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("name: s\nservices: {a: {image: '" + "${BIG}" * 20 + "'}}\n")
    with pytest.raises(SpecError, match="characters after interpolation"):
        load_stack(path, env={"BIG": "x" * 1_000_000})


def test_one_env_file_named_many_times_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("A=" + "x" * 99_997 + "\n")
    files = ", ".join(["a.env"] * 100)
    msg = error(tmp_path, f"name: s\nservices: {{a: {{image: i, env_file: [{files}]}}}}\n")
    assert msg.startswith("services.a.env_file: the env files come to more than"), msg


def test_a_cycle_is_an_error_of_the_file(tmp_path: Path) -> None:
    msg = error(
        tmp_path,
        "services:\n  a: {image: i, depends_on: [b]}\n  b: {image: i, depends_on: {a: {}}}\n",
    )
    assert msg == "services: depends_on makes a cycle: a -> b -> a"
