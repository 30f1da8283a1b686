"""The shared frame of kdlab's explorers: controls above an Output widget that shows one figure.

Each explorer keeps its computation in a plain function (tested without a browser) and its drawing
in ``update()``; :class:`FigureWidget` wires the controls to ``update()`` and shows the figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt


def show_in(output, figure) -> None:
    """Make the ipywidgets ``output`` show ``figure`` (and nothing else).

    Through the widget's ``outputs`` state, not ``with output: display(...)``: under nbclient
    (``make notebooks``, the executed copies) a cell that displayed inside the context manager made
    the executor wait out the whole cell timeout for the cell's reply (nbclient issue 312), which
    stalled notebook 00 for the 30 minutes of ``--timeout``. In JupyterLab both look the same.
    """
    output.outputs = ()
    output.append_display_data(figure)


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
        show_in(self.output, self.figure)

    def update(self):  # pragma: no cover - each explorer defines it
        raise NotImplementedError
