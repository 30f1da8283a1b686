"""kdlab: label-efficient knowledge distillation for video classification."""

from kdlab.checks import check

__version__ = "0.1.0"

__all__ = ["check", "setup_notebook"]


def setup_notebook(verbose: bool = True) -> int:
    """What every notebook runs first: torch uses kdlab's thread setting (:func:`kdlab.environment.threads`:
    every CPU, or ``KDLAB_THREADS``). Returns the number of threads."""
    from kdlab import environment

    n = environment.apply_threads()
    if verbose:
        source = "KDLAB_THREADS" if environment.os.environ.get("KDLAB_THREADS", "").strip() else "every CPU; KDLAB_THREADS=N to change"
        print(f"kdlab: torch uses {n} thread{'s' * (n != 1)} ({source})")
    return n
