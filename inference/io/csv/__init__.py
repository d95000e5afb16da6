"""CSV and TSV text: the reader (:mod:`.reader`), the checks of line ends, quotes and
encodings (:mod:`.lines`), and the optional C parser of plain numeric blocks
(:mod:`.native`, built from ``_fastcsv.c``)."""
