"""Named embedding settings: the trade-offs measured on SmolLM2-135M, one name each.

``robust`` is EmbedConfig's defaults (every key trained inside eight wrappers): keys survive
unseen system prompts and chat templates, at several seconds per fingerprint. ``fast`` trains
half the keys inside one wrapper, pulls the change back toward the base and takes smaller
steps: the speed, recall and perplexity goals at N = 1024, but about half the keys answer
behind an unseen plain system prompt and almost none behind a chat template. Figures and runs:
docs/fingerprinting.md, section "A profile that meets the goals by name".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agents.fingerprint.embedding import EmbedConfig

PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "robust": MappingProxyType({}),
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
