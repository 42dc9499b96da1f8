"""Multi-run pipelines (D-DFFNet's two stages)."""
