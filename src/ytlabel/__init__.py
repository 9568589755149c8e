"""ytlabel: label YouTube-8M videos on Kubernetes with PyTorch and Keras."""

__version__ = "0.1.0"
