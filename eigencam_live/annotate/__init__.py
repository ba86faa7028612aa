"""Headless annotation: video files and images in, annotated H.264 MP4 and images out, with
per-frame stats and heatmaps.

* :mod:`.jobs` expands the inputs (files, folders, globs; videos and images) and plans and checks
  every output before a model is built (:func:`plan_jobs`);
* :mod:`.pipeline` annotates one video in three overlapping threads (:func:`annotate_file`);
* :mod:`.images` annotates images, each in its own size, in batches of one size
  (:func:`annotate_images`);
* :mod:`.outputs` writes the stats CSV and heatmaps NPZ beside them.
"""

from .images import ImagesResult, annotate_images
from .jobs import IMAGE_FORMATS, OUTPUT_SUFFIX, Job, expand_inputs, image_table, plan_jobs
from .pipeline import AnnotateResult, annotate_file

__all__ = [
    "IMAGE_FORMATS",
    "OUTPUT_SUFFIX",
    "AnnotateResult",
    "ImagesResult",
    "Job",
    "annotate_file",
    "annotate_images",
    "expand_inputs",
    "image_table",
    "plan_jobs",
]
