"""Testers' tools: Anvil cheatcodes, fork mode, protocol state at a glance, replayable scenarios.

Everything here drives a *development* chain (Anvil, or an Anvil forking a real network); the
commands refuse to run against a node that is not Anvil.
"""
