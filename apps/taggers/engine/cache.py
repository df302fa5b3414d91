"""Loaded backends per worker process, keyed by (kind, artifact sha256, device); least recently
used first out: 2 on a GPU, 4 on a CPU (docs/taggers.md#engine)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()


def backend_get(key: tuple[str, str, str], load: Callable[[], Any]) -> Any:
    """The cached backend for `key`, loading it (outside the lock's fast path) when absent."""
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    backend = load()
    with _lock:
        _loaded[key] = backend
        _loaded.move_to_end(key)
        limit = 2 if key[2].startswith("cuda") else 4
        while len(_loaded) > limit:
            _, old = _loaded.popitem(last=False)
            unload = getattr(old, "unload", None)
            if unload is not None:
                unload()
    return backend


def backends_clear() -> None:
    with _lock:
        for backend in _loaded.values():
            unload = getattr(backend, "unload", None)
            if unload is not None:
                unload()
        _loaded.clear()
