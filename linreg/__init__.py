"""``linreg``: the command line, one module per subcommand.

``linreg train`` and ``linreg regenerate`` (:mod:`linreg.train`, options in
:mod:`linreg.train_flags`), ``linreg predict`` (:mod:`linreg.predict`), ``linreg
info`` (:mod:`linreg.info`), ``linreg serve`` (:mod:`linreg.serve`) and ``linreg
bench`` (:mod:`linreg.bench`); the rules they share (flags, exit statuses 0/1/2,
errors, install hints; docs/guide/cli.md) are :mod:`linreg.common`'s, the dispatch
:mod:`linreg.main`'s. Only the module of the subcommand that runs is imported, so
``linreg predict``, ``info`` and ``serve`` work where only the inference part is
installed (no torch). ``python -m linreg ...`` is the same command.

The library itself is :mod:`training` and :mod:`inference`; this package is the
layer above both and nothing imports it.
"""
