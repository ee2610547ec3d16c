"""pianoforte_train: trains the pianoforte performance GRU and exports it to ONNX."""

__version__ = "0.1.0"
