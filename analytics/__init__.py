"""Analytics: daily rollups, KPI selectors, the dashboard, A/B statistics and exports (the analytics issue)."""
