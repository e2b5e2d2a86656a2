"""The fingerprinting oracle: licence requests become fingerprinted, encrypted, committed copies."""
