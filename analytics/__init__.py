"""Analytics: daily rollups, KPI selectors, the dashboard, A/B statistics and exports (the analytics issue).

For now `selectors.dashboard_cards` gives the empty KPI cards of the admin home page.
"""
