"""OML Hub off-chain agents: fingerprinting, storage, chain access and the protocol roles."""

__version__ = "0.1.0"
