"""MkDocs hook: Sphinx cross-reference roles in docstrings shown as plain code.

The docstrings use numpydoc with Sphinx roles (``:class:`Predictor```); mkdocstrings
renders the role's name as text before the code span. This drops the role name, so
``:class:`Predictor``` reads as ``Predictor`` in code.
"""

from __future__ import annotations

import re
from typing import Any

_ROLES = r":(?:py:)?(?:meth|class|func|mod|attr|data|exc|obj|const|term):"
#: a role before a rendered code span, and a role left raw (in a parameter's type text)
_RENDERED = re.compile(_ROLES + r"(?=<code>)")
_RAW = re.compile(_ROLES + r"`~?([^`<]+)`")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _RAW.sub(r"<code>\1</code>", _RENDERED.sub("", html))
