"""Progress displays of a batch: a tqdm bar (tqdm imported only when asked for) and the figures
every display shows besides the count: the window of calls in flight, refusals and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._limiter import Window


class Progress:
    """A tqdm bar showing errors, the window and refusals; tqdm is imported only when asked for."""

    __slots__ = ("_bar", "_shown", "_window", "errors")

    def __init__(self, total: int | None, description: str, window: Window) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as error:
            raise ImportError(
                "progress=True needs tqdm, which is not installed: "
                "pip install 'asyncbento[progress]'"
            ) from error
        self.errors = 0
        self._window = window
        self._shown: tuple[int, int, int] = (0, 0, 0)
        self._bar = tqdm(total=total, desc=description, unit="call", dynamic_ncols=True)

    def update(self, failed: bool) -> None:
        # tqdm.update is itself a counter until its refresh interval is due; the postfix is
        # rebuilt only when one of its figures changed.
        if failed:
            self.errors += 1
        window = self._window
        shown = (window.size, window.refused, self.errors)
        if shown != self._shown:
            self._shown = shown
            self._bar.set_postfix_str(progress_figures(window, self.errors), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def progress_figures(window: Window, errors: int) -> str:
    """What a progress display shows besides the count: window, refusals and errors."""
    return f"window={window.size}/{window.ceiling} refused={window.refused} errors={errors}"
