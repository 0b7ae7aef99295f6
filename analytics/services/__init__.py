"""Analytics writes: the rollups (rollup.py) and the click retention that relies on them (retention.py)."""

from analytics.services.retention import RetentionResult, click_retention_run
from analytics.services.rollup import RollupResult, rollup_backfill, rollup_incremental

__all__ = ["RetentionResult", "RollupResult", "click_retention_run", "rollup_backfill", "rollup_incremental"]
