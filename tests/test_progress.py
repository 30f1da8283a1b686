"""kdlab.progress: one switch silences every bar (nbval needs it), and bars redraw at most once a second."""

from kdlab.progress import tqdm


def test_kdlab_progress_0_disables_every_bar(monkeypatch):
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    assert tqdm(range(3)).disable
    monkeypatch.setenv("KDLAB_PROGRESS", "1")
    bar = tqdm(range(3))
    assert not bar.disable and bar.mininterval == 1.0
    assert tqdm(range(3), disable=True).disable  # a caller's own switch still wins
