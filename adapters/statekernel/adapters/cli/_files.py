"""The command line's file handling: whole-or-nothing writes, and the one place where an
``OSError`` about a path becomes a one-line message.

Commands read and write with plain calls and let an ``OSError`` propagate; :func:`main`
turns one that names a path into ``error: PATH: what is wrong; what to do`` with exit code 2
(:func:`describe_os_error`). Writes go through :func:`write_file` and :func:`write_folder`,
which leave nothing half-written: each file is written to a temporary file beside it and
renamed over it, and a failure removes what was made. Their errors name the path the user
gave, never a temporary one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["check_folder", "describe_os_error", "write_file", "write_folder"]

StrPath = str | os.PathLike[str]


def describe_os_error(exc: OSError) -> str | None:
    """``PATH: what is wrong; what to do`` for an error about a path, or ``None`` when
    ``exc`` names no path (a broken connection, say), which is not a file-system mistake."""
    if not isinstance(exc.filename, str | bytes | os.PathLike):
        return None
    path = os.fsdecode(exc.filename)
    code = exc.errno
    if code == errno.ENOENT:
        missing = _first_missing_folder(path)
        if missing is not None:
            return f"{path}: no such folder {missing}; create it or fix the path"
        return f"{path}: no such file; check the path"
    if code == errno.EISDIR:
        return f"{path}: is a folder, not a file; give a file path"
    if code in (errno.ENOTDIR, errno.EEXIST):
        if os.path.exists(path) and not os.path.isdir(path):
            return f"{path}: is a file, not a folder; give a folder path"
        blocker = _file_in_the_way(path)
        if blocker is not None:
            return f"{path}: {blocker} is a file, not a folder; fix the path"
    if code in (errno.EACCES, errno.EPERM):
        return f"{path}: permission denied; check its permissions or choose another path"
    if code == errno.EROFS:
        return f"{path}: read-only file system; choose another path"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: no space left on the device; free some space or choose another path"
    return f"{path}: {exc.strerror or exc}"


def _ancestors(path: str) -> list[str]:
    """The folders above ``path`` as written, nearest first (``a/b/c`` -> ``a/b``, ``a``)."""
    out = []
    parent = os.path.dirname(path.rstrip(os.sep) or path)
    while parent and parent not in out:
        out.append(parent)
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    return out


def _first_missing_folder(path: str) -> str | None:
    """The outermost folder above ``path`` that does not exist, if any."""
    missing = None
    for folder in _ancestors(path):
        if os.path.lexists(folder):
            break
        missing = folder
    return missing


def _file_in_the_way(path: str) -> str | None:
    """The nearest existing entry above ``path`` that is not a folder, if any."""
    for folder in _ancestors(path):
        if os.path.exists(folder):
            return None if os.path.isdir(folder) else folder
    return None


@contextlib.contextmanager
def _about(path: StrPath) -> Iterator[None]:
    """Re-raise an ``OSError`` as the same error about ``path`` (not a temporary file)."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or os.fspath(exc.filename or "") == os.fspath(path):
            raise
        raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from exc


def _raise(code: int, path: StrPath) -> None:
    exc_type: type[OSError] = {
        errno.EISDIR: IsADirectoryError,
        errno.ENOTDIR: NotADirectoryError,
        errno.ENOENT: FileNotFoundError,
        errno.EACCES: PermissionError,
    }.get(code, OSError)
    raise exc_type(code, os.strerror(code), os.fspath(path))


def check_folder(folder: StrPath) -> None:
    """Raise the ``OSError`` that writing files into ``folder`` would meet, without writing
    anything: a file where the folder (or a folder above it) should be, or a folder that
    cannot be written. A long command checks its output folder before its work starts."""
    path = Path(folder)
    if path.exists():
        if not path.is_dir():
            _raise(errno.ENOTDIR, folder)
        if not os.access(path, os.W_OK | os.X_OK):
            _raise(errno.EACCES, folder)
        return
    for above in path.parents:
        if above.exists():
            if not above.is_dir():
                _raise(errno.ENOTDIR, folder)
            if not os.access(above, os.W_OK | os.X_OK):
                _raise(errno.EACCES, folder)
            return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _temporary(target: Path, text: str) -> Path:
    """Write ``text`` to a new temporary file beside ``target`` (with ``target``'s mode if
    it exists, else the usual mode for a new file) and return its path."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
            _write_all(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _is_special(path: Path) -> bool:
    """An existing entry that is not a regular file or a folder (``/dev/null``, a pipe)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _check_target(target: Path) -> None:
    """Refuse what a plain ``open(target, "w")`` would refuse: a folder, a read-only file."""
    if target.is_dir():
        _raise(errno.EISDIR, target)
    if target.exists() and not os.access(target, os.W_OK):
        _raise(errno.EACCES, target)


def write_file(path: StrPath, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all: a failure leaves the old file
    as it was. A device or pipe is written in place; a symbolic link keeps pointing at the
    file it names, which is the one replaced."""
    target = Path(os.path.realpath(path))
    with _about(path):
        _check_target(target)
        if _is_special(target):
            with open(target, "w", encoding="utf-8") as stream:
                stream.write(text)
            return
        temp = _temporary(target, text)
        try:
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and any missing folders above it; return those created, outermost
    first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                _raise(errno.ENOTDIR, folder)
            break
        missing.append(path)
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except BaseException:
        _remove_folders(created)
        raise
    return created


def _remove_folders(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def write_folder(folder: StrPath, files: Mapping[str, str]) -> None:
    """Write each ``name -> text`` into ``folder`` (created with the folders above it when
    missing), all or nothing as far as the file system allows: every file is written to a
    temporary file first and only then renamed into place, so a failure while writing
    (a full disk, a name taken by a folder) changes none of the files, removes the temporary
    files and the folders it created, and names the file it could not write."""
    root = Path(folder)
    with _about(folder):
        created = _make_folder(root)
    temps: dict[Path, Path] = {}
    try:
        for name, text in files.items():
            target = root / name
            with _about(target):
                _check_target(target)
                temps[target] = _temporary(target, text)
        for target, temp in temps.items():
            with _about(target):
                os.replace(temp, target)
    except BaseException:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        _remove_folders(created)
        raise
