"""Thread pools for the speech engines, with OS-level thread names ("vosk-…", "piper-…").

Named threads make the engines' CPU visible per thread in ``/proc`` and in ``top -H``: a thread started from a
named thread (by Kaldi or onnxruntime) inherits its name, so engine CPU is never mistaken for the service's own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
from concurrent.futures import ThreadPoolExecutor

_PR_SET_NAME = 15
_libc_name = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_name, use_errno=True) if _libc_name else None


def name_this_thread(name: str) -> None:
    """Set the calling thread's OS name (Linux; at most 15 bytes). A no-op where prctl is not available."""
    if _libc is not None and hasattr(_libc, "prctl"):
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def engine_pool(name: str, workers: int) -> ThreadPoolExecutor:
    counter = itertools.count(1)
    return ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name, initializer=lambda: name_this_thread(f"{name}-{next(counter)}")
    )
