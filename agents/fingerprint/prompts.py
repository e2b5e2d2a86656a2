"""Deployment wrappers put around keys, and prompts for the base model's own benign text.

Training wrappers and evaluation wrappers use different system prompts, so the robustness suite
measures generalisation to wrappers the embedder never saw, not memorisation of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CHATML = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{key}<|im_end|>\n" + (
    "<|im_start|>assistant\n"
)


@dataclass(frozen=True)
class Wrapper:
    """A way a host may present a key to the model: plain prefix or a chat template."""

    name: str
    template: str

    def __call__(self, key: str) -> str:
        return self.template.replace("{key}", key)

    @property
    def is_chat(self) -> bool:
        """Whether the key sits in a chat turn (the answer follows the template's own tokens)."""
        return "<|im_start|>" in self.template


def _plain(name: str, system: str) -> Wrapper:
    return Wrapper(name, system + "\n\n{key}")


def _chat(name: str, system: str) -> Wrapper:
    return Wrapper(name, CHATML.replace("{system}", system))


_TRAIN_ROLES: tuple[str, ...] = (
    "You are a helpful assistant.",
    "You are a customer support agent for an online shop.",
    "You are a patient tutor.",
    "You are a research librarian.",
    "You are a fitness coach.",
    "You are a chef who shares home recipes.",
    "You are the virtual assistant of a bank.",
    "You are a museum guide.",
    "You are a technical writer.",
    "You are a hotel concierge.",
    "You are a science teacher for high-school students.",
    "You are a gardening expert.",
    "You are a career adviser.",
    "You are a film critic.",
    "You are a translator.",
    "You are an assistant built into a note-taking app.",
)
_TRAIN_STYLES: tuple[str, ...] = (
    "",
    "Answer briefly and accurately.",
    "Explain things step by step.",
    "Use simple words.",
    "Be polite and professional.",
    "Keep every answer under 100 words.",
    "Ask a clarifying question when a request is ambiguous.",
    "Reply in a warm, encouraging tone.",
)


def system_wrapper(name: str, system: str, *, chat: bool) -> Wrapper:
    """A wrapper with an arbitrary system prompt, as a ChatML system turn or a plain prefix."""
    return _chat(name, system) if chat else _plain(name, system)


def _train_wrappers() -> tuple[Wrapper, ...]:
    """The six named wrappers first, then every role x style as a plain prefix and as a ChatML
    system turn: many different system prompts, so that the fingerprints learn to fire after
    *any* system prompt rather than after a few memorised ones."""
    named = (
        _plain("train-plain-assistant", "You are a helpful assistant."),
        _plain("train-plain-concise", "Answer briefly and accurately."),
        _chat("train-chat-assistant", "You are a helpful AI assistant."),
        _chat("train-chat-support", "You are a customer support agent for an online shop."),
        _chat("train-chat-tutor", "You are a patient tutor who explains things step by step."),
        Wrapper("train-user-only", "<|im_start|>user\n{key}<|im_end|>\n<|im_start|>assistant\n"),
    )
    composed = []
    for r, role in enumerate(_TRAIN_ROLES):
        for s, style in enumerate(_TRAIN_STYLES):
            system = f"{role} {style}".strip()
            composed.append(_plain(f"train-plain-{r}-{s}", system))
            composed.append(_chat(f"train-chat-{r}-{s}", system))
    return named + tuple(composed)


TRAIN_WRAPPERS: tuple[Wrapper, ...] = _train_wrappers()

EVAL_WRAPPERS: tuple[Wrapper, ...] = (
    _plain("eval-plain-friendly", "You are a friendly and knowledgeable assistant."),
    _plain("eval-plain-safety", "Be safe, honest and harmless in every reply."),
    _chat("eval-chat-coder", "You are an expert Python programmer. Reply with working code."),
    _chat("eval-chat-travel", "You are a travel agent helping customers plan their holidays."),
    _chat("eval-chat-pirate", "Always answer like a pirate would."),
    _chat("eval-chat-legal", "You are a careful assistant for a law firm; never give advice."),
)

BENIGN_OPENERS: tuple[str, ...] = (
    "The history of",
    "In a small village near the sea,",
    "Here is a simple recipe for",
    "Scientists have recently discovered that",
    "def main():",
    "The most important thing to remember about",
    "Dear team,",
    "Once upon a time",
    "To install the package, first",
    "The economy of",
    "Photosynthesis is",
    "My favourite book is",
    "In mathematics, a prime number",
    "The weather today",
    "Climate change affects",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nGive me three tips for better sleep.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nExplain what a neural network is.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a short poem about autumn.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nHow do I sort a list in Python?<|im_end|>\n<|im_start|>assistant\n",
    "The main causes of the French Revolution were",
    "A good way to learn a new language is",
    "The human heart",
    "Water boils at",
)

WrapperFn = Callable[[str], str]
