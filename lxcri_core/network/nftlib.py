"""``nft`` in-process through libnftables (the library the nft binary is built on).

The start and stop hooks apply one JSON ruleset each; spawning ``nft`` for it
costs 15-18 ms of a hook's run time, loading its library about 1 ms. Only the
two command shapes lxcri uses are taken over, with the binary's exact
semantics (``-j``: JSON output, JSON input recognised, the same ``Error: ...``
text on the error stream and exit status 1 on failure):

- ``nft -j -f -`` with the ruleset on stdin;
- ``nft -j WORD...`` (``list table inet lxcri``), words of plain characters only
  (the binary's argv is not shell-parsed, the library's buffer is).

Anything else, or a host where the library cannot be loaded, returns None and
the caller spawns the binary as before.
"""

from __future__ import annotations

import ctypes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from collections.abc import Sequence

#: libnftables' NFT_CTX_DEFAULT and NFT_CTX_OUTPUT_JSON (nftables/libnftables.h).
_CTX_DEFAULT = 0
_OUTPUT_JSON = 1 << 4
_SONAME = "libnftables.so.1"
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

_lib: ctypes.CDLL | None = None
_tried = False


def _load() -> ctypes.CDLL | None:
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    try:
        lib = ctypes.CDLL(_SONAME)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_free.restype = None
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.nft_ctx_output_set_flags.restype = None
    for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_int
    for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_char_p
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    _lib = lib
    return lib


def command_text(argv: Sequence[str], stdin: str | None) -> str | None:
    """What the library must run for ``argv`` (an nft command line), None when it is not
    one of the shapes taken over (pure)."""
    if len(argv) < 3 or argv[0] != "nft" or argv[1] != "-j":
        return None
    if list(argv[2:]) == ["-f", "-"]:
        return stdin
    words = list(argv[2:])
    if stdin or not all(w and not w.startswith("-") and set(w) <= _WORD for w in words):
        return None
    return " ".join(words)


def run(argv: Sequence[str], stdin: str | None = None) -> tuple[int, str, str] | None:
    """(exit status, stdout, stderr) as ``nft`` would give them, or None: spawn nft."""
    text = command_text(argv, stdin)
    if text is None:
        return None
    lib = _load()
    if lib is None:
        return None
    ctx = lib.nft_ctx_new(_CTX_DEFAULT)
    if not ctx:
        return None
    try:
        lib.nft_ctx_output_set_flags(ctx, _OUTPUT_JSON)
        if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
            return None
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)
    return (0 if rc == 0 else 1), out, err
