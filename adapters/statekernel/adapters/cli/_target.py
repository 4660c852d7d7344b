"""Loading a spec from a TARGET: ``module.path:ATTRIBUTE`` or ``path/to/file.py:ATTRIBUTE``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

import statekernel
from statekernel.kernel import Spec, StatekernelError

__all__ = ["TargetError", "load_object", "load_spec"]


class TargetError(StatekernelError, LookupError):
    """A TARGET that does not name a spec: bad shape, missing module, a module that fails to
    import (the message shows the file, line and source line that raised), no or a missing
    attribute (the message lists the specs the module defines), or an attribute that is not
    a :class:`~statekernel.kernel.Spec`."""


def load_spec(target: str) -> Spec:
    """Import the spec that ``target`` names.

    ``module.path:ATTRIBUTE`` imports a module; ``path/to/file.py:ATTRIBUTE`` runs a file (its
    folder is put on ``sys.path`` first so it can import its neighbours). A
    :class:`~statekernel.kernel.SpecError` raised while the module builds its spec propagates
    unchanged, so callers can list every problem; so does the ``OSError`` of a file that
    cannot be read (``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``), which
    names the path. Everything else is a :class:`TargetError`.
    """
    value = _load(target)
    if not isinstance(value, Spec):
        raise TargetError(f"{target} is a {type(value).__name__}, not a statekernel.kernel.Spec")
    return value


def load_object(target: str) -> object:
    """Import whatever ``target`` names (same forms as :func:`load_spec`), such as a store
    factory for ``check --store MODULE:FACTORY``."""
    return _load(target)


_SHAPE = "a TARGET looks like module.path:ATTRIBUTE or path/to/file.py:ATTRIBUTE"


def _load(target: str) -> object:
    module_part, sep, attr = target.rpartition(":")
    if not sep:
        module_part, attr = target, ""
    file_form = module_part.endswith(".py") or "/" in module_part or "\\" in module_part
    if not module_part or not (file_form or _is_module_name(module_part)):
        raise TargetError(
            f"target {target!r} must look like module.path:ATTRIBUTE or path/to/file.py:ATTRIBUTE"
        )
    module = _import_file(module_part) if file_form else _import_module(module_part, attr)
    if not attr:
        specs = _specs_in(module)
        if not specs:
            raise TargetError(
                f"target {target!r} names no attribute, and {module_part} defines no spec: {_SHAPE}"
            )
        named = ", ".join(f"{module_part}:{name}" for name in specs)
        raise TargetError(f"target {target!r} names no attribute; specs defined there: {named}")
    try:
        value = getattr(module, attr)
    except AttributeError:
        specs = _specs_in(module)
        hint = f"; specs defined there: {', '.join(specs)}" if specs else ""
        raise TargetError(f"{module_part} has no attribute {attr!r}{hint}") from None
    return value


def _is_module_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _specs_in(module: ModuleType) -> list[str]:
    return sorted(k for k, v in vars(module).items() if isinstance(v, Spec))


def _import_file(module_part: str) -> ModuleType:
    path = Path(module_part)
    with open(path, "rb"):  # missing, unreadable, a folder: main() says which, with the path
        pass
    name = f"_statekernel_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {module_part} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except StatekernelError:
        raise
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise _import_failed(module_part, exc) from exc
    return module


def _import_module(module_part: str, attr: str) -> ModuleType:
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        if exc.name and (module_part == exc.name or module_part.startswith(f"{exc.name}.")):
            raise TargetError(_no_module(module_part, attr)) from exc
        raise _import_failed(module_part, exc) from exc
    except StatekernelError:
        raise
    except (Exception, SystemExit) as exc:
        raise _import_failed(module_part, exc) from exc


def _no_module(module_part: str, attr: str) -> str:
    """No module by that name: suggest the file form when the file is right here."""
    *folders, last = module_part.split(".")
    file = Path(*folders, f"{last}.py")
    if file.is_file():
        return (
            f"no module named {module_part!r}; to load the file {file}, use "
            f"{file}:{attr or 'ATTRIBUTE'}"
        )
    if not attr:
        return f"no module named {module_part!r}: {_SHAPE}"
    return f"no module named {module_part!r}"


def _import_failed(where: str, exc: BaseException) -> TargetError:
    """What went wrong, then where: the file, line and source line that raised (the user's
    code, not a library's), as a traceback shows its last entry."""
    if isinstance(exc, SyntaxError):
        lines = [f"importing {where} failed: {type(exc).__name__}: {exc.msg}"]
        lines += _syntax_error_location(exc)
    else:
        message = str(exc)
        lines = [
            f"importing {where} failed: {type(exc).__name__}{': ' if message else ''}{message}"
        ]
        frame = _culprit(exc)
        if frame is not None:
            lines.append(f'  File "{_shown(frame.filename)}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line}")
    return TargetError("\n".join(lines))


def _syntax_error_location(exc: SyntaxError) -> list[str]:
    if not exc.filename or not exc.lineno:
        return []
    lines = [f'  File "{_shown(exc.filename)}", line {exc.lineno}']
    text = (exc.text or "").rstrip("\n")
    code = text.lstrip()
    if code:
        lines.append(f"    {code}")
        if exc.offset and exc.offset > 0:
            start = exc.offset - 1 - (len(text) - len(code))
            same_line = exc.end_lineno in (None, exc.lineno)
            end = exc.end_offset - 1 - (len(text) - len(code)) if exc.end_offset else 0
            width = end - start if same_line and end > start else 1
            lines.append("    " + " " * max(start, 0) + "^" * width)
    return lines


def _library_folders() -> list[Path]:
    """Where the standard library, installed packages and statekernel itself live."""
    paths = sysconfig.get_paths()
    folders = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    folders |= {Path(p).resolve() for p in statekernel.__path__}
    return sorted(folders)


def _culprit(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the user's code in ``exc``'s traceback (or the innermost frame
    at all when none is the user's)."""
    here = Path(__file__).resolve()
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<") and Path(f.filename).resolve() != here
    ]
    libraries = _library_folders()
    mine = [
        f
        for f in frames
        if not any(Path(f.filename).resolve().is_relative_to(d) for d in libraries)
    ]
    chosen = mine or frames
    return chosen[-1] if chosen else None


def _shown(filename: str) -> str:
    """``filename`` relative to the working folder when it is inside it."""
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return filename
