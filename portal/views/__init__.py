"""The referrer portal's pages: /<language>/p/<merchant>/<program>/... (portal/urls.py); a shared /p/... link
without a language redirects (portal/urls_redirect.py).

base: the program and participant from the request, the language redirect, page rendering; account: join, sign-in,
sign-out, data export, deletion; dashboard: link, shares, QR, invitations; rewards: rewards, points, catalog,
milestones and redeeming; leaderboard: the opt-in leaderboard."""
