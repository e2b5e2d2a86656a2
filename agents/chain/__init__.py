"""Chain access for every role: deployments, keystores, one transaction sender, event cursor."""
