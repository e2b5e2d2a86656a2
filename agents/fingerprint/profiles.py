"""Named embedding settings: the trade-offs measured on SmolLM2-135M, one name each.

``robust`` trains every key inside eight wrappers, half of them plain system prompts and half
ChatML turns, pulls the change back toward the base and takes smaller steps than EmbedConfig's
defaults: at N = 1024 (seven runs) 99.8-99.9% recall, +2.6-3.3% perplexity and >= 95% of the
keys behind every unseen system prompt and chat template, at 1.1-1.3 s per fingerprint on 2 Intel
Xeon cores with AMX (refreshes and wrapped keys in bfloat16; 1.56 s without), 2.1 s on 2 AMD
EPYC cores (measured before the bfloat16 parts; 2.7 before each wrapper's system prompt was
stored once).
``fast`` trains half the keys inside one wrapper: the speed, recall and perplexity goals at
N = 1024 (0.43 s per fingerprint), but about half the keys answer behind an unseen plain
system prompt and almost none behind a chat template. Figures and runs:
docs/fingerprinting.md, sections "A profile that meets the goals by name", "Fewer wrappers
per key, and the formats mixed", "A wrapper's system prompt stored once" and "Refreshes and
wrapped keys in bfloat16".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agents.fingerprint.embedding import EmbedConfig

PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "robust": MappingProxyType(
            {
                "decay": 0.05,
                # At N = 1024 with eight wrappers per key: 2e-3 +6.10% perplexity, 1e-3
                # +2.72% (the ChatML turns kept 0.86-0.97 of the keys; >= 0.96 with
                # mix_formats, +2.59%); recall 99.8-99.9% at each.
                "learning_rate": 1e-3,
                "mix_formats": True,
                # The refreshes and the wrapped keys' states in bfloat16 where the hardware
                # has it: at N = 1024 on 2 Intel cores with AMX 1.10 s per fingerprint
                # instead of 1.56, with the same recall, perplexity (paired -0.09 points) and
                # unseen-wrapper figures; the check that ends training stays float32.
                "refresh_precision": "auto",
                "wrapped_precision": "auto",
            }
        ),
        "fast": MappingProxyType(
            {
                "augment_fraction": 0.5,
                "augment_wrappers": 1,
                "synthetic_wrappers": 0,
                "decay": 0.05,
                # Adam moves each weight by about the learning rate per step, so the rate sets
                # the edit's size. At N = 1024: 2e-3 +2.66% perplexity, 0.435 s per
                # fingerprint; 1.4e-3 +1.84%, 0.427 s; 1e-3 +1.23%, 0.522 s; 7e-4 +1.12%,
                # 0.578 s (the epoch cap); recall 99.8-99.9% at each.
                "learning_rate": 1.4e-3,
            }
        ),
    }
)


def profile_settings(name: str) -> Mapping[str, Any]:
    """The EmbedConfig fields profile ``name`` sets; a ValueError listing the choices if none."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r}; choose one of: {known}") from None


def profile_config(name: str, **overrides: Any) -> EmbedConfig:
    """The EmbedConfig of profile ``name``; ``overrides`` (EmbedConfig fields) win over it."""
    return EmbedConfig(**{**profile_settings(name), **overrides})
