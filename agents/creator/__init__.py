"""The model creator's role: register models and derivatives, publish versions, set terms.

``oml creator ...`` (:mod:`agents.creator.commands`) over :class:`agents.creator.models.Creator`.
"""
