"""`make demo`: the whole OML Hub story played by real agents in separate processes.

``scenario`` holds the steps (a list, so parts can be plugged in or skipped), ``processes``
starts and stops the agents, ``load`` is the OpenAI-compatible load generator, ``money``
computes what every party should have received from on-chain parameters, ``table`` prints
the final summary. The driver is ``scripts/demo.py``; the tour is ``docs/demo.md``.
"""
