"""A user's function named on the command line: a reward (`hicra train --reward-funcs`) or an
answer checker (`hicra eval --checker`), found from a SPEC in TRL's forms.

SPEC forms, tried in this order:
- a built-in name (the caller's table: TRL's `accuracy_reward`, hicra's `accuracy`, ...);
- `path/to/file.py:function`: the file is imported as a module (its folder is put on `sys.path`,
  so that it can import its neighbours);
- a dotted import path, `my_lib.rewards.custom_reward` (TRL's `trl grpo --reward_funcs` form),
  importable from the working folder, which is put on `sys.path` as TRL does; `module:function`
  is taken too.

Every failure is one `HicraError` line naming the SPEC and what is wrong (file missing, import
error with its file and line, no such function, not callable), before any model loads.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from hicra.errors import HicraError


class UserCodeError(HicraError):
    """A SPEC that does not name a usable function; the message names the SPEC."""


def spec_form(spec: str) -> str:
    """'file' (path.py:function), 'dotted' (a.b.function or a.b:function) or 'name'."""
    left, sep, _ = spec.rpartition(":")
    if sep and left.endswith(".py"):
        return "file"
    if sep or "." in spec:
        return "dotted"
    return "name"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def _import_error(spec: str, what: str, err: BaseException) -> UserCodeError:
    """Where an import failed: a SyntaxError's file and line, else the deepest frame of the
    user's own code (not importlib's)."""
    where = ""
    if isinstance(err, SyntaxError) and err.filename:
        where = f" at {err.filename}, line {err.lineno}"
    else:
        frames = [f for f in _frames(err) if "importlib" not in f.filename]
        if frames:
            where = f" at {frames[-1].filename}, line {frames[-1].lineno}"
    return UserCodeError(f"{what} {spec!r}: importing it raised {_first_line(err)}{where}")


def _frames(err: BaseException) -> list[Any]:
    import traceback

    return list(traceback.extract_tb(err.__traceback__))


def _module_from_file(path: Path, spec: str, what: str) -> ModuleType:
    if not path.is_file():
        raise UserCodeError(f"{what} {spec!r}: file not found: {path}")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"hicra_user_{resolved.stem}_{digest}"  # one module per file, however often named
    if name in sys.modules:
        return sys.modules[name]
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file may import the files beside it
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise UserCodeError(f"{what} {spec!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise _import_error(spec, what, err) from None
    return module


def _module_from_path(module_path: str, spec: str, what: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as TRL's `trl grpo` does: importable from the working folder
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as err:
        if err.name and module_path.startswith(err.name):  # the module itself, not its imports
            raise UserCodeError(
                f"{what} {spec!r}: no module {err.name!r} importable from {cwd} (give a dotted "
                "import path, or path/to/file.py:function)"
            ) from None
        raise _import_error(spec, what, err) from None
    except Exception as err:
        raise _import_error(spec, what, err) from None


def load_function(
    spec: str, what: str, builtins: Mapping[str, Callable[[], Callable[..., Any]]]
) -> Callable[..., Any]:
    """The function a SPEC names. `builtins` maps names to factories (called once here);
    `what` ("reward function", "checker") starts every error message."""
    spec = spec.strip()
    form = spec_form(spec)
    if form == "name":
        if spec in builtins:
            return builtins[spec]()
        raise UserCodeError(
            f"{what} {spec!r}: not a built-in name ({', '.join(builtins)}), a dotted import "
            "path (my_module.my_function) or path/to/file.py:function"
        )
    if form == "file":
        file_part, _, func_name = spec.rpartition(":")
        module = _module_from_file(Path(file_part).expanduser(), spec, what)
        where = file_part
    else:
        if ":" in spec:
            module_path, _, func_name = spec.rpartition(":")
        else:
            module_path, _, func_name = spec.rpartition(".")
        module = _module_from_path(module_path, spec, what)
        where = f"module {module_path!r}"
    if not func_name or not hasattr(module, func_name):
        found = sorted(
            n
            for n, v in vars(module).items()
            if callable(v)
            and not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
        )
        among = f" (its functions: {', '.join(found)})" if found else ""
        raise UserCodeError(f"{what} {spec!r}: {where} has no function {func_name!r}{among}")
    func = getattr(module, func_name)
    if not callable(func):
        raise UserCodeError(
            f"{what} {spec!r}: {func_name!r} in {where} is a {type(func).__name__}, not a function"
        )
    return func


def check_call(func: Callable[..., Any], spec: str, what: str, kwargs: Mapping[str, Any]) -> None:
    """Can `func(**kwargs)` be called? A missing parameter or one it cannot take is one line."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: the dry call will tell
        return
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        params = signature.parameters
        missing = [
            n
            for n, p in params.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in kwargs
        ]
        if missing:
            raise UserCodeError(
                f"{what} {spec!r} needs {', '.join(repr(m) for m in missing)}, which the call "
                f"does not give (it gives: {', '.join(kwargs)})"
            ) from None
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        extra = [k for k in kwargs if k not in params]
        if extra and not takes_any:
            raise UserCodeError(
                f"{what} {spec!r} cannot take {', '.join(repr(k) for k in extra)}: add **kwargs "
                f"to its parameters ({err})"
            ) from None
        raise UserCodeError(f"{what} {spec!r} cannot take the call: {err}") from None


def function_name(func: Any) -> str:
    """The name TRL logs a reward under (`rewards/<name>/mean`)."""
    return getattr(func, "__name__", None) or type(func).__name__
