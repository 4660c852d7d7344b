"""Every file-system mistake on the command line is one ``error:`` line naming the path and
what to do, exit 2, with nothing half-written."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from statekernel.adapters.cli import main
from statekernel.adapters.sqlite import SqliteStore
from statekernel.kernel import Command
from tests.kernel.example import SPEC

TARGET = "tests.kernel.example:SPEC"
DOUBLING = f"{Path(__file__).parents[1] / 'explore' / 'explore_specs.py'}:DOUBLING"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding a file ``afile``, a folder ``adir``, a folder ``adir.py``, a
    non-database ``junk.db`` and a statekernel database ``app.db``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.py").mkdir()
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all " * 100)
    store = SqliteStore(SPEC, tmp_path / "app.db")
    store.handle("app-1", Command("attach", {"count": 1}))
    store.close()
    return tmp_path


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
        if "app.db" not in p.name
    }


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["diagram", TARGET, "-o", "missing_dir/x.mmd"],
            "missing_dir/x.mmd: no such folder missing_dir; create it or fix the path",
        ),
        (
            ["diagram", TARGET, "-o", "missing_dir/deeper/x.mmd"],
            "missing_dir/deeper/x.mmd: no such folder missing_dir; create it or fix the path",
        ),
        (["diagram", TARGET, "-o", "adir"], "adir: is a folder, not a file; give a file path"),
        (
            ["diagram", TARGET, "-o", "afile/x.mmd"],
            "afile/x.mmd: afile is a file, not a folder; fix the path",
        ),
        (["docs", TARGET, "-o", "afile"], "afile: is a file, not a folder; give a folder path"),
        (
            ["docs", TARGET, "-o", "afile/sub"],
            "afile/sub: afile is a file, not a folder; fix the path",
        ),
        (
            ["docs", TARGET, "-o", "afile", "--check"],
            "afile: is a file, not a folder; give a folder path",
        ),
        (
            ["explore", DOUBLING, "--save-traces", "afile"],
            "afile: is a file, not a folder; give a folder path",
        ),
        (
            ["explore", DOUBLING, "--save-traces", "afile/traces"],
            "afile/traces: afile is a file, not a folder; fix the path",
        ),
        (
            ["diagram", TARGET, "--highlight", "missing.json"],
            "missing.json: no such file; check the path",
        ),
        (
            ["diagram", TARGET, "--highlight", "adir"],
            "adir: is a folder, not a file; give a file path",
        ),
        (
            ["lint", "missing/spec.py:SPEC"],
            "missing/spec.py: no such folder missing; create it or fix the path",
        ),
        (["lint", "missing.py:SPEC"], "missing.py: no such file; check the path"),
        (["show", "adir.py:SPEC"], "adir.py: is a folder, not a file; give a file path"),
        (["check", "missing.py:SPEC"], "missing.py: no such file; check the path"),
        (["history", "missing.db", "app-1"], "missing.db: no such file; check the path"),
        (["history", "adir", "app-1"], "adir: is a folder, not a file; give a file path"),
        (
            ["history", "adir", "app-1", "--spec", TARGET],
            "adir: is a folder, not a file; give a file path",
        ),
        (
            ["verify", "adir", "--spec", TARGET],
            "adir: is a folder, not a file; give a file path",
        ),
        (["verify", "missing.db", "--spec", TARGET], "missing.db: no such file; check the path"),
        (
            ["history", "junk.db", "app-1"],
            "junk.db: not a SQLite database file; check the path",
        ),
        (
            ["verify", "junk.db", "--spec", TARGET],
            "junk.db: not a SQLite database file; check the path",
        ),
    ],
)
def test_a_file_system_mistake_is_one_line_and_exit_2(
    here: Path, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    before = _listing(here)
    code, out, err = run(capsys, *argv)
    assert (code, err) == (2, f"error: {line}\n")
    assert out == ""  # failed before any work was reported
    assert _listing(here) == before  # nothing created, nothing half-written


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into (for root, a kernel folder that refuses new files)."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    folder = Path("/sys/kernel")
    try:
        fd = os.open(folder / "statekernel-probe", os.O_WRONLY | os.O_CREAT, 0o644)
    except PermissionError:
        yield folder
        return
    os.close(fd)
    os.unlink(folder / "statekernel-probe")
    pytest.skip("no folder here refuses writes to this user")


def test_permission_denied_writing_a_file(locked: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = locked / "x.mmd"
    code, _, err = run(capsys, "diagram", TARGET, "-o", str(path))
    assert (code, err) == (
        2,
        f"error: {path}: permission denied; check its permissions or choose another path\n",
    )


def test_permission_denied_writing_a_folder(
    locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = locked / "pages"
    code, _, err = run(capsys, "docs", TARGET, "-o", str(path))
    assert (code, err) == (
        2,
        f"error: {path}: permission denied; check its permissions or choose another path\n",
    )
    assert not path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
@pytest.mark.parametrize("kind", ["target", "db", "trace"])
def test_permission_denied_reading(
    here: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    secret = here / "secret.py"
    secret.write_text("SPEC = None\n")
    secret.chmod(0)
    argv = {
        "target": ["lint", "secret.py:SPEC"],
        "db": ["history", "secret.py", "app-1"],
        "trace": ["diagram", TARGET, "--highlight", "secret.py"],
    }[kind]
    code, _, err = run(capsys, *argv)
    assert (code, err) == (
        2,
        "error: secret.py: permission denied; check its permissions or choose another path\n",
    )


def test_docs_writes_no_page_when_one_cannot_be_written(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = here / "pages"
    (out / "enrollment.md").mkdir(parents=True)
    code, stdout, err = run(capsys, "docs", TARGET, "-o", "pages")
    assert (code, err) == (
        2,
        "error: pages/enrollment.md: is a folder, not a file; give a file path\n",
    )
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["enrollment.md"]  # no index.md


def test_docs_keeps_the_old_pages_when_the_disk_fills_up(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "docs", TARGET, "-o", "pages")[0] == 0
    before = _listing(here / "pages")
    real_write = os.write
    calls = []

    def fill_up(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data[: len(data) // 2] or data)  # a short write first

    monkeypatch.setattr(os, "write", fill_up)
    code, _, err = run(capsys, "docs", TARGET, "tests.stores.ledger:SPEC", "-o", "pages")
    monkeypatch.undo()
    assert code == 2
    assert err.startswith("error: pages/") and err.endswith(
        ": no space left on the device; free some space or choose another path\n"
    )
    assert _listing(here / "pages") == before  # old pages intact, no temporary files left


def test_a_new_docs_folder_is_removed_again_when_writing_fails(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    code, _, err = run(capsys, "docs", TARGET, "-o", "new/pages")
    monkeypatch.undo()
    assert code == 2 and "no space left on the device" in err
    assert not (here / "new").exists()


def test_diagram_replaces_an_existing_file_whole_and_keeps_its_mode(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = here / "x.mmd"
    path.write_text("old\n")
    path.chmod(0o640)
    code, expected, _ = run(capsys, "diagram", TARGET)
    assert code == 0
    assert run(capsys, "diagram", TARGET, "-o", "x.mmd") == (0, "", "")
    assert path.read_text() == expected
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []


def test_diagram_through_a_symbolic_link_replaces_the_file_it_names(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "real.mmd").write_text("old\n")
    (here / "link.mmd").symlink_to("real.mmd")
    code, expected, _ = run(capsys, "diagram", TARGET)
    assert code == 0
    assert run(capsys, "diagram", TARGET, "-o", "link.mmd") == (0, "", "")
    assert (here / "link.mmd").is_symlink()
    assert (here / "real.mmd").read_text() == expected


def test_a_new_file_gets_the_usual_permissions(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    umask = os.umask(0o022)
    try:
        assert run(capsys, "diagram", TARGET, "-o", "new.mmd")[0] == 0
    finally:
        os.umask(umask)
    assert (here / "new.mmd").stat().st_mode & 0o777 == 0o644


def test_diagram_writes_through_a_device(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that is not a regular file (``/dev/null``, a named pipe) is written in place."""
    assert run(capsys, "diagram", TARGET, "-o", os.devnull) == (0, "", "")


def test_a_failed_diagram_write_keeps_the_old_file(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = here / "x.mmd"
    path.write_text("old\n")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    code, _, err = run(capsys, "diagram", TARGET, "-o", "x.mmd")
    monkeypatch.undo()
    assert (code, err) == (
        2,
        "error: x.mmd: no space left on the device; free some space or choose another path\n",
    )
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []


def test_history_of_a_folder_named_like_a_database_creates_nothing(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "history", "adir/app.db", "app-1")
    assert (code, err) == (2, "error: adir/app.db: no such file; check the path\n")
    assert list((here / "adir").iterdir()) == []


def test_an_empty_file_is_not_a_statekernel_database(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "empty.db").write_bytes(b"")
    code, _, err = run(capsys, "verify", "empty.db", "--spec", TARGET)
    assert (code, err) == (
        2,
        "error: empty.db holds no data of spec 'enrollment' (it holds: no statekernel data)\n",
    )
    assert (here / "empty.db").read_bytes() == b""


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/x.md"),
            "/mnt/x.md: read-only file system; choose another path",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device", "x.md"),
            "x.md: no space left on the device; free some space or choose another path",
        ),
        (
            OSError(errno.EACCES, "Permission denied", "x.md"),
            "x.md: permission denied; check its permissions or choose another path",
        ),
        (OSError(errno.ENAMETOOLONG, "File name too long", "xx.md"), "xx.md: File name too long"),
        (OSError(errno.ECONNRESET, "Connection reset by peer"), None),
    ],
)
def test_describe_os_error(exc: OSError, message: str | None) -> None:
    from statekernel.adapters.cli._files import describe_os_error

    assert describe_os_error(exc) == message
