"""JSON the user hands in (flags, files, hand-edited logs and plans): whatever is wrong
with it is a ValueError, so every reader refuses it in one line."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def loads(text: str | bytes) -> Any:
    """`json.loads`, but a document nested deeper than the decoder's stack (it raises
    RecursionError, not a ValueError) is refused like any malformed one; bytes that are
    not UTF-8 raise UnicodeDecodeError, a ValueError too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
