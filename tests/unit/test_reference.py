from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxcri_core.errors import LxcriError, ReferenceError_
from lxcri_core.reference import parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repo", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("user/app", "docker.io", "user/app", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("localhost/foo", "localhost", "foo", "latest", None),
        ("localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", "v1", None),
        ("127.0.0.1:5000/test/bb:1.0", "127.0.0.1:5000", "test/bb", "1.0", None),
        ("ghcr.io/o/r/x@" + DIGEST, "ghcr.io", "o/r/x", None, DIGEST),
        ("quay.io/a/b:t@" + DIGEST, "quay.io", "a/b", "t", DIGEST),
        ("foo__bar/a-b.c_d", "docker.io", "foo__bar/a-b.c_d", "latest", None),
        ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
    ],
)
def test_parse_like_docker(text, registry, repo, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " nginx",
        "Nginx",
        "nginx:",
        "nginx:-bad",
        "a//b",
        "-a",
        "a@sha256:12",
        "a@sha256:" + "g" * 64,
        "nginx:" + "t" * 129,
        "a/" * 200 + "b",
    ],
)
def test_invalid_references_raise_one_error_type(text):
    with pytest.raises(ReferenceError_):
        parse_reference(text)
    assert issubclass(ReferenceError_, LxcriError)
    assert issubclass(ReferenceError_, ValueError)


def test_first_component_with_dot_is_a_registry():
    assert parse_reference("0.0/x").registry == "0.0"
    assert parse_reference("UPPER/case/repo").registry == "UPPER"


def test_familiar_form():
    assert parse_reference("docker.io/library/nginx:1").familiar() == "nginx:1"
    assert parse_reference("u/app").familiar() == "u/app:latest"
    assert parse_reference("ghcr.io/x/y:1").familiar() == "ghcr.io/x/y:1"


component = st.from_regex(r"[a-z0-9]{1,5}([._-][a-z0-9]{1,5}){0,2}", fullmatch=True)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
host = st.sampled_from(["ghcr.io", "127.0.0.1:5000", "localhost", "reg.example.com:443"])


@given(host, st.lists(component, min_size=1, max_size=3), tag)
def test_roundtrip_str(h, comps, t):
    text = f"{h}/{'/'.join(comps)}:{t}"
    ref = parse_reference(text)
    assert str(ref) == text
    assert parse_reference(str(ref)) == ref


plain = st.from_regex(r"[a-z0-9]{1,5}([_-][a-z0-9]{1,5}){0,2}", fullmatch=True)


@given(st.lists(plain, min_size=1, max_size=3), st.one_of(st.none(), tag))
def test_docker_hub_defaults(comps, t):
    """Without a '.', ':' or localhost in the first component, it is Docker Hub."""
    text = "/".join(comps) + (f":{t}" if t else "")
    ref = parse_reference(text)
    assert ref.registry == "docker.io"
    assert ref.tag == (t or "latest")
    assert ref.repository == ("/".join(comps) if len(comps) > 1 else f"library/{comps[0]}")
    assert parse_reference(str(ref)) == ref


@given(st.text(max_size=40))
def test_never_crashes_with_other_errors(text):
    with contextlib.suppress(ReferenceError_):
        parse_reference(text)
