"""Start-up tuning: hold the cyclic garbage collector until the first frame, then freeze what start-up built.

Importing Textual and building the cockpit allocate a few hundred thousand long-lived objects (modules, classes,
CSS rules, widgets). With the collector on, each allocation burst triggers collections that walk all of them again
(~20-40 ms of CPU before the first frame here). Holding the collector until the first frame, then moving everything
alive into the permanent generation (gc.freeze), saves that time and also keeps later full collections (during a log
flood) from re-scanning start-up objects. Reference counting still frees everything that is not in a cycle.
"""

from __future__ import annotations

import gc

_held = False


def hold_gc() -> None:
    """Pause the cyclic collector for start-up (no effect if it is already off: the caller's choice stands)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release_gc() -> None:
    """After the first frame (or when start-up fails): freeze start-up's objects and turn the collector back on."""
    global _held
    if not _held:
        return
    _held = False
    gc.freeze()
    gc.enable()


def holding() -> bool:
    return _held
