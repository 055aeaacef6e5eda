"""InferGuard."""
