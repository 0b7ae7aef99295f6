"""Analytics reads, from the rollups only: one module per page or concern (see each module)."""
