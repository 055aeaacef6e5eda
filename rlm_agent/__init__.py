"""rlm_agent: the brain. Never imports inferguard; speaks versioned dict payloads."""
