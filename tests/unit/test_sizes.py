"""The one size parser (lxcri_core.sizes) and the three places that read sizes through it."""

from __future__ import annotations

import pytest

from lxcri_core.config import min_free_bytes, valid_min_free
from lxcri_core.errors import SpecError, StorageError
from lxcri_core.sizes import parse_size
from lxcri_core.spec import options
from lxcri_core.storage.zfscli import parse_size as zfs_size


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("0", 0),
        ("1048576", 1 << 20),
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("512mb", 512 << 20),
        ("1.5GiB", 3 << 29),
        ("2G", 2 << 30),
        ("116K", 118784),
        ("1.50M", 1572864),
        ("1t", 1 << 40),
        ("1p", 1 << 50),
        ("1E", 1 << 60),
        ("10b", 10),
        (" 4 k ", 4096),
    ],
)
def test_sizes(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "m", "-1", "1e3", "inf", "nan", "1x", "1kk", "1 2", "1٣"])
def test_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_every_reader_takes_the_same_forms() -> None:
    """Before: config took only K/M/G/T without a suffix, zfs no ``iB``, flags no E."""
    for text in ("2g", "2G", "2GiB", "2gb", "1.5G"):
        n = parse_size(text)
        assert options.parse_size(text, "--swap") == n
        assert min_free_bytes(text, 1 << 50) == n and valid_min_free(text)
        assert zfs_size(text) == n


def test_each_reader_keeps_its_error() -> None:
    with pytest.raises(SpecError, match="--swap"):
        options.parse_size("lots", "--swap")
    with pytest.raises(StorageError, match="zfs size"):
        zfs_size("lots")
    assert not valid_min_free("lots")
    assert zfs_size("-") == zfs_size("none") == 0
