"""The arbiter: rules on disputed leak challenges after re-checking the evidence."""
