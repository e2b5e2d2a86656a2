"""The oracle's view of the fingerprint engine (agents.fingerprint)."""

from __future__ import annotations

from pathlib import Path

from agents.fingerprint.commitment import commit, fingerprint_salt
from agents.fingerprint.detection import verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, embed_fingerprints
from agents.fingerprint.generation import Fingerprint
from agents.oracle.ports import FingerprintedCopy, RecallCheck


class FingerprintEngine:
    """Embeds with a fixed configuration; verification re-reads the written copy from disk."""

    def __init__(self, config: EmbedConfig | None = None) -> None:
        # The recall check is a separate oracle step (on the copy as written), not the engine's.
        self.config = (config or EmbedConfig()).model_copy(update={"verify": False})

    def embed(self, base_dir: Path, out_dir: Path, seed: bytes, count: int) -> FingerprintedCopy:
        result = embed_fingerprints(base_dir, out_dir, seed, count, self.config)
        pairs = [(fp.key, fp.response) for fp in result.fingerprints]
        return FingerprintedCopy(directory=out_dir, fingerprints=pairs, seconds=result.seconds)

    def check_recall(self, model_dir: Path, fingerprints: list[tuple[str, str]]) -> RecallCheck:
        verdict = verify_fingerprints(model_dir, _as_fingerprints(fingerprints))
        return RecallCheck(queried=verdict.queried, matched=verdict.matched)

    def merkle_root(self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes) -> bytes:
        return commit(copy_id, _as_fingerprints(fingerprints), seed).root

    def reveal_material(
        self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes, index: int
    ) -> tuple[bytes, list[bytes]]:
        commitment = commit(copy_id, _as_fingerprints(fingerprints), seed)
        return fingerprint_salt(seed, index), commitment.proof(index)


def _as_fingerprints(pairs: list[tuple[str, str]]) -> list[Fingerprint]:
    return [Fingerprint(key=key, response=response) for key, response in pairs]
