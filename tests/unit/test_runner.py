"""The one subprocess runner (lxcri_core.runner): real processes, and recording runners."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from lxcri_core.errors import BackendError, NetworkError, StorageError
from lxcri_core.network import command, ports
from lxcri_core.runner import CmdResult, Runner, SubprocessRunner, checked, output
from lxcri_core.storage import cmd, zfscli


class Recording:
    """A Runner that starts nothing: it records argv and stdin and answers from a list."""

    def __init__(self, *answers: CmdResult) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.answers = list(answers)

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        self.calls.append((list(argv), stdin))
        return self.answers.pop(0) if self.answers else CmdResult(0, "", "")


def test_the_defaults_are_the_one_implementation() -> None:
    assert isinstance(command.run_cmd, SubprocessRunner)
    assert isinstance(cmd.run_cmd, SubprocessRunner)
    assert command.CmdResult is CmdResult


def test_a_real_process_exit_status_is_a_result_not_an_error() -> None:
    run = SubprocessRunner(StorageError)
    got = run(["sh", "-c", "cat; echo oops >&2; exit 3"], "in")
    assert got == CmdResult(3, "in", "oops\n")


@pytest.mark.parametrize("error", [NetworkError, StorageError, BackendError])
def test_a_missing_program_raises_the_callers_error(error: type[Exception]) -> None:
    run = SubprocessRunner(error, "apt install it")  # type: ignore[arg-type]
    with pytest.raises(error, match="no-such-tool-xyz is not installed; apt install it"):
        run(["no-such-tool-xyz"])


def test_a_hung_program_is_stopped_with_the_callers_error() -> None:
    with pytest.raises(StorageError, match=r"did not finish within 0\.2 s"):
        SubprocessRunner(StorageError, timeout=0.2)(["sleep", "5"])


def test_checked_and_output_name_the_failure() -> None:
    nft = CmdResult(1, "", "Error: Could not process rule: No such file\nadd x\n^^^\n")
    with pytest.raises(NetworkError, match=r"^publishing failed: Error: Could not process rule"):
        checked(nft, "publishing", NetworkError)
    zfs = Recording(CmdResult(1, "", "cannot open 'p/x': dataset does not exist\n"))
    with pytest.raises(StorageError, match=r"^`zfs get x` failed: cannot open"):
        output(zfs, ["zfs", "get", "x"], StorageError)
    assert output(Recording(CmdResult(0, "ok\n", "")), ["true"]) == "ok\n"


def test_network_and_storage_take_a_recording_runner() -> None:
    run: Runner = Recording()
    ports.unpublish("100", table="t", run=run)
    assert run.calls[0][0] == ["nft", "-j", "-f", "-"]  # type: ignore[attr-defined]
    assert '"c-100-pre"' in (run.calls[0][1] or "")  # type: ignore[attr-defined]
    gone = Recording(CmdResult(1, "", "cannot open 'p/x': dataset does not exist\n"))
    assert zfscli.exists("p/x", run=gone) is False
    assert gone.calls == [(["zfs", "list", "-H", "-o", "name", "-t", "all", "p/x"], None)]
