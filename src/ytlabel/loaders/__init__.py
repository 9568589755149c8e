"""Framework loaders over the numpy data layer: `torch_loader` (PyTorch) and `keras_loader` (tf.data).

Kept outside `ytlabel.data` so that the data layer stays numpy-only and each framework is imported
only by the code that needs it.
"""
