"""rnnscope's NumPy engine: data, layers, models, training and checkpoints.

Nothing in this package imports Qt, pyqtgraph or matplotlib (``tests/test_core_imports.py``).
"""
