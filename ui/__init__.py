"""The desktop app (PyQt5): live Eigen-CAM heatmaps and a frame-by-frame inspection tool.

``ui`` uses the library's public functions only; everything heavy runs in
:class:`ui.worker.Pipeline`'s thread, never on the GUI thread.
"""
