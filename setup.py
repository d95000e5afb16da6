"""Build the optional C extension ``inference.batch._fastcsv`` (metadata: pyproject.toml).

``optional=True``: without a C compiler the package still installs, and
``inference.batch.fastcsv.available()`` is False (CSV blocks are then parsed by pyarrow).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "inference.batch._fastcsv",
            ["inference/batch/_fastcsv.c"],
            depends=["inference/batch/_pow5.h"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
