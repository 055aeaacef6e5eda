"""Standalone canary probes (no inferguard import); shipped as package data so `inferguard probe` finds them."""
