"""The examples in docs/notifications.md run and print what the page says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def test_python_examples_run_and_their_comments_are_the_output() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert blocks
    for block in blocks:
        namespace: dict[str, object] = {}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for statement in re.split(r"\n(?=\S)", block.strip()):
                code, _, expected = statement.partition("\n# ")
                if expected and not code.lstrip().startswith(("print", "from")):
                    assert repr(eval(code, namespace)) == expected.strip(), code
                else:
                    exec(code, namespace)
        for line in block.splitlines():
            if line.startswith("print(") and "#" in line:
                assert line.split("#", 1)[1].strip() in out.getvalue()
