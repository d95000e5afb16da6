"""Parquet: the reader (:mod:`.reader`), its fast path of plain numeric column chunks
(:mod:`.fast`), and the optional C decoder behind it (:mod:`.native`, built from
``_fastparquet.c``)."""
