"""Labelled evaluation cases (``cases/*.json``) and the runner behind ``rlm-agent eval``."""
