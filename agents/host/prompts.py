"""What a receipt's ``promptHash`` and ``responseHash`` commit to.

- completions: the UTF-8 prompt string exactly as sent;
- chat: the messages as compact JSON ``[{"role":..,"content":..}]`` (keys in that order, no
  spaces, non-ASCII kept, content parts joined into one string);
- response: the UTF-8 completion text exactly as returned (for streams: the deltas joined).

A prover recomputes both from its own request and the answer, so these rules are part of the
protocol (mirror them in the prover, do not vary them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from eth_utils.crypto import keccak


def chat_prompt_text(messages: Sequence[tuple[str, str]]) -> str:
    return json.dumps(
        [{"role": role, "content": content} for role, content in messages],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def text_hash(text: str) -> bytes:
    return keccak(text.encode("utf-8"))
