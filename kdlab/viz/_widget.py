"""The shared frame of kdlab's explorers: controls above an Output widget that shows one figure.

Each explorer keeps its computation in a plain function (tested without a browser) and its drawing
in ``update()``; :class:`FigureWidget` wires the controls to ``update()`` and shows the figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


class FigureWidget:
    """Mix-in: ``_wire(header, controls, figure)`` builds ``.output`` and ``.widget``
    (``header`` above the output) and calls ``update()`` whenever a control's value changes;
    ``_show()`` redraws ``.figure`` into the output."""

    def _wire(self, header, controls, figure) -> None:
        import ipywidgets as w

        self.output = w.Output()
        self.figure = figure
        plt.close(figure)  # shown through the Output widget only
        for control in controls:
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([header, self.output])

    def _show(self) -> None:
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(self.figure)

    def update(self):  # pragma: no cover - each explorer defines it
        raise NotImplementedError
