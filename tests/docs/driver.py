"""The interpreter that runs one page's ``python`` blocks, in order, in one namespace.

Started by :mod:`tests.docs.runner` as ``python driver.py`` in the page's scratch
directory. It reads one JSON request per line on stdin (``{"code", "page", "line"}``),
runs the code with file descriptors 1 and 2 sent to a temporary file (so output from
C code and child processes is caught too, stdout and stderr in the order written), and
answers one JSON line (``{"output", "error"}``) on the stdout it was started with.
Tracebacks name the page and the line of the block in the Markdown file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback


def run(code: str, page: str, line: int, namespace: dict[str, object]) -> dict[str, object]:
    error = None
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            # blank lines first, so that a traceback's line numbers are the Markdown file's
            exec(compile("\n" * line + code, page, "exec"), namespace)
        except BaseException:  # noqa: BLE001 - any failure of the block is reported
            error = traceback.format_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        capture.seek(0)
        output = capture.read().decode("utf-8", errors="replace")
    return {"output": output, "error": error}


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    namespace: dict[str, object] = {"__name__": "__main__"}
    sys.path.insert(0, os.getcwd())  # as `python` in this directory would have it
    for request in sys.stdin:
        block = json.loads(request)
        answer = run(block["code"], block["page"], block["line"], namespace)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
