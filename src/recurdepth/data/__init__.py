"""Data sets: image classification (vision.py, augment.py) and mazes (mazes/)."""
