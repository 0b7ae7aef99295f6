"""Analytics writes: the rollups (rollup.py) and the large benchmark data set (seed.py)."""

from analytics.services.rollup import RollupResult, rollup_backfill, rollup_incremental

__all__ = ["RollupResult", "rollup_backfill", "rollup_incremental"]
