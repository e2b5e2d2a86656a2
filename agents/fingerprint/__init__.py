"""OML fingerprinting: secret (key, response) pairs per model copy — generate, embed, detect,
commit. A pure library: it knows nothing of the chain. Heavy imports (torch, transformers) happen
inside the functions, so importing this package is cheap."""

from agents.fingerprint.commitment import (
    Commitment,
    commit,
    fingerprint_leaf,
    fingerprint_salt,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from agents.fingerprint.detection import Verdict, accuse, load_fingerprints, verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, EmbedResult, embed_fingerprints
from agents.fingerprint.errors import FingerprintError
from agents.fingerprint.generation import Fingerprint, FingerprintConfig, generate_fingerprints
from agents.fingerprint.profiles import PROFILES, profile_config

__all__ = [
    "PROFILES",
    "Commitment",
    "EmbedConfig",
    "EmbedResult",
    "Fingerprint",
    "FingerprintConfig",
    "FingerprintError",
    "Verdict",
    "accuse",
    "commit",
    "embed_fingerprints",
    "fingerprint_leaf",
    "fingerprint_salt",
    "generate_fingerprints",
    "load_fingerprints",
    "merkle_proof",
    "merkle_root",
    "profile_config",
    "verify_fingerprints",
    "verify_proof",
]
