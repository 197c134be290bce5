"""The instructor's view of a workshop: who passed which step, as a chart that refreshes.

:func:`progress_chart` draws one row per attendee: a cell per step of the lab, green when
its check passed, red when it last failed, grey when not reached yet.
:func:`progress_board` shows that chart in a notebook and redraws it every few seconds
(a button stops it); it is a shell over :func:`progress_chart`.

Example:
    >>> from agwlab import connect, instructor
    >>> lab = connect()                                  # the instructor's context
    >>> instructor.progress_board(lab, every=10)         # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from . import workshop

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .lab import Lab

__all__ = ["progress_board", "progress_chart"]

_COLOURS = {"✅": "#1a7f37", "❌": "#cf222e", "": "#d0d7de"}


def progress_chart(lab: Lab, names: list[str] | None = None) -> Figure:
    """Attendee x step as coloured cells (passed, failed, not reached), with each one's count."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    table = workshop.progress_table(lab, names)
    rows, cols = table.shape
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * cols + 2.5), max(1.6, 0.4 * rows + 1.2)))
    if rows == 0 or cols == 0:
        ax.text(0.5, 0.5, "no progress recorded yet" if rows else
                "no attendees yet: python -m agwlab workshop create NAME...", ha="center", va="center")
        ax.set_axis_off()
        return fig
    codes = table.map(lambda v: {"": 0, "❌": 1, "✅": 2}[v]).to_numpy()
    ax.imshow(codes, cmap=ListedColormap([_COLOURS[""], _COLOURS["❌"], _COLOURS["✅"]]), vmin=0, vmax=2,
              aspect="auto")
    ax.set_yticks(range(rows), [f"{name}  {int((table.loc[name] == '✅').sum())}/{cols}" for name in table.index])
    labels = [f"{c.split(' ', 1)[0][:2]}·{c.split(' ', 1)[1]}" if " " in c else c for c in table.columns]
    ax.set_xticks(range(cols), labels, rotation=90, fontsize=7)
    ax.set_xticks([x - 0.5 for x in range(1, cols)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, rows)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_title("Workshop progress (green passed, red failed, grey not reached)")
    fig.tight_layout()
    return fig


def progress_board(lab: Lab, *, every: float = 10.0, names: list[str] | None = None) -> Any:
    """The progress chart in a notebook, redrawn every ``every`` seconds until Stop is pressed.

    Returns:
        The ipywidgets box (display it, or let the cell show it).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = w.Output()
    status = w.Label()
    stop = w.Button(description="Stop refreshing")
    done = threading.Event()

    def draw() -> None:
        try:
            fig = progress_chart(lab, names)
        except Exception as exc:  # noqa: BLE001 - shown on the board; the next refresh tries again
            status.value = f"could not read progress: {type(exc).__name__}: {exc}"
            return
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        status.value = f"refreshing every {every:g}s" if not done.is_set() else "stopped"

    def loop() -> None:
        while not done.wait(every):
            draw()

    def on_stop(_: Any) -> None:
        done.set()
        status.value = "stopped"

    stop.on_click(on_stop)
    draw()
    threading.Thread(target=loop, daemon=True, name="agwlab-progress-board").start()
    return w.VBox([w.HBox([stop, status]), out])
