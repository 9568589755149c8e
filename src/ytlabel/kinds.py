"""The two words the whole code base branches on, named once: a model's level and a run's framework."""

VIDEO, FRAME = "video", "frame"  # video-level means (tf.train.Example) or frame-level sequences (SequenceExample)
LEVELS = (VIDEO, FRAME)
TORCH, KERAS = "torch", "keras"  # PyTorch, or Keras 3 on TensorFlow
FRAMEWORKS = (TORCH, KERAS)
