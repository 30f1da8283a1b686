"""kdlab: label-efficient knowledge distillation for video classification."""

__version__ = "0.1.0"
