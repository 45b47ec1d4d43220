"""A function run on another thread while the test holds something it must not wait for (no tests here)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Background:
    """Runs ``fn`` on a daemon thread from the start. ``finished_within`` waits with a deadline (a thread
    stuck on a lock would hang the test otherwise); ``reraise`` puts its error on the test's thread."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001  (re-raised by reraise, on the test's thread)
            self.error = exc

    def finished_within(self, seconds: float) -> bool:
        self._thread.join(timeout=seconds)
        return not self._thread.is_alive()

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error
