"""Analytics writes: the rollups (rollup.py)."""

from analytics.services.rollup import RollupResult, rollup_backfill, rollup_incremental

__all__ = ["RollupResult", "rollup_backfill", "rollup_incremental"]
