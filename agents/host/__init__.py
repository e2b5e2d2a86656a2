"""The host node: serve a licensed copy, sign a receipt per call, report and pay per epoch."""
