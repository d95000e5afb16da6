"""Fits that never hold their rows: chunks of a file, a stream, or Dask partitions.

- :mod:`.sources`: where chunks come from (arrays, files, a cached first pass), timed
  passes, the row sample the export verifies on;
- :mod:`.tsqr`: tall-skinny QR, the preconditioner and the statistics from chunks;
- :mod:`.epochs`: SGD epochs over chunks, shared by both engines;
- :mod:`.streaming`: the chunked and streamed fits of files and arrays;
- :mod:`.dask`: the same fit on a Dask cluster;
- :mod:`.results`: what a chunked fit hands back (a fitted estimator and a
  :class:`~training.pipeline.TrainingRun`).
"""
