"""The bottom layer: the project's vocabulary (stages, devices, dtypes, kinds), errors, statistics on raw samples,
atomic file writes and number formatting. Nothing here imports torch or any other package of recbench."""
