"""OML fingerprinting: secret (key, response) pairs per model copy — generate, embed, detect,
commit. A pure library: it knows nothing of the chain."""
