"""The leaderboard page: /<language>/p/<shop>/<program>/leaderboard/ (programs that opt in)."""

from __future__ import annotations

from django.http import Http404

from analytics.selectors.leaderboard import portal_leaderboard
from portal.views.base import page, portal_view
from programs.models import Participant, Program


@portal_view(require_participant=True)
def leaderboard(request, program: Program, participant: Participant):
    """Top referrers by first name and initial, the participant's rank and their milestone progress (programs that
    opt in: /<language>/p/<shop>/<program>/leaderboard/)."""
    if not program.leaderboard_enabled:
        raise Http404
    board = portal_leaderboard(program=program, participant=participant)
    return page(request, "portal/leaderboard.html", program, participant=participant, board=board)
