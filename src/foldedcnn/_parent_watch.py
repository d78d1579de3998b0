"""Worker processes that end with their parent: a parent killed with SIGKILL cannot shut its pool down, and its
pool's workers would otherwise wait for work, or go on with theirs, forever."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """Start a daemon thread that ends this process (os._exit(0)) once process `parent` (a pid, usually the
    os.getpid() of the process that starts the pool) is no longer its parent. A pool initializer."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
