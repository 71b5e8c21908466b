"""Provisioning: the signed bundle that carries recipients and policy from IT to a box, and its install."""
