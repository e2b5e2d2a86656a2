"""Storage layer: IPFS with locally verified CIDs, model manifests and per-licensee encryption."""
