"""Loading a spec from a TARGET: ``module.path:ATTRIBUTE`` or ``path/to/file.py:ATTRIBUTE``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from statekernel.kernel import Spec, StatekernelError

__all__ = ["TargetError", "load_object", "load_spec"]


class TargetError(StatekernelError, LookupError):
    """A TARGET that does not name a spec: bad shape, missing module or file, missing
    attribute, or an attribute that is not a :class:`~statekernel.kernel.Spec`."""


def load_spec(target: str) -> Spec:
    """Import the spec that ``target`` names.

    ``module.path:ATTRIBUTE`` imports a module; ``path/to/file.py:ATTRIBUTE`` runs a file (its
    folder is put on ``sys.path`` first so it can import its neighbours). A
    :class:`~statekernel.kernel.SpecError` raised while the module builds its spec propagates
    unchanged, so callers can list every problem.
    """
    value = _load(target)
    if not isinstance(value, Spec):
        raise TargetError(f"{target} is a {type(value).__name__}, not a statekernel.kernel.Spec")
    return value


def load_object(target: str) -> object:
    """Import whatever ``target`` names (same forms as :func:`load_spec`), such as a store
    factory for ``check --store MODULE:FACTORY``."""
    return _load(target)


def _load(target: str) -> object:
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise TargetError(
            f"target {target!r} must look like module.path:ATTRIBUTE or path/to/file.py:ATTRIBUTE"
        )
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise TargetError(f"no such file: {module_part}")
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
        except Exception as exc:
            del sys.modules[name]
            raise TargetError(f"importing {module_part} failed: {exc!r}") from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            if exc.name and module_part.startswith(exc.name):
                raise TargetError(f"no module named {module_part!r}") from exc
            raise TargetError(f"importing {module_part} failed: {exc!r}") from exc
        except StatekernelError:
            raise
        except Exception as exc:
            raise TargetError(f"importing {module_part} failed: {exc!r}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        specs = sorted(k for k, v in vars(module).items() if isinstance(v, Spec))
        hint = f"; specs defined there: {', '.join(specs)}" if specs else ""
        raise TargetError(f"{module_part} has no attribute {attr!r}{hint}") from None
    return value
