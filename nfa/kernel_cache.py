"""Dropping cached machine code that is stale because a helper module changed.

Numba keys a function's on-disk cache (`cache=True`) on its own source file only, but the
machine code of a cached function contains the helpers it inlined or linked from other
modules: after an edit there it would keep running the old helpers. `drop_when_changed`
keeps a digest of a group of modules' sources in a stamp file beside Numba's cache and,
when it differs, flushes the cache of every jitted function of the group, so each is
compiled again on its next call. The engine's static kernels (`nfa.kernel*`) and the
JSON decoder (`service.fastjson*`) each call it once, on import, before any kernel runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

from numba.core.registry import CPUDispatcher


def drop_when_changed(
    name: str, modules: tuple[ModuleType, ...], shared: tuple[ModuleType, ...] = ()
) -> bool:
    """Flush the caches of `modules`' jitted functions if the sources of `modules` and
    `shared` (helpers without cached functions of their own) changed since the last call
    that saw them; returns whether it did. `name` names the stamp file."""
    dispatchers = [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__
    ]
    folders = sorted(
        str(folder)
        for d in dispatchers
        if (folder := getattr(getattr(d, "_cache", None), "_cache_path", None)) is not None
    )
    if not folders:
        return False
    sources = [Path(str(m.__file__)).read_bytes() for m in (*modules, *shared)]
    digest = hashlib.sha256(b"".join(sources)).hexdigest()
    stamp = Path(folders[0]) / f"{name}.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return False
        for dispatcher in dispatchers:
            dispatcher._cache.flush()  # type: ignore[attr-defined]
        stamp.write_text(digest)
    except OSError:  # a read-only cache folder: Numba then does not cache either
        return False
    return True
