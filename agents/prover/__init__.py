"""The prover: obtains fingerprint keys, probes deployments, raises and follows challenges."""
