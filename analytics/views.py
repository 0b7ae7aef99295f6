"""The referrer portal's leaderboard page: /<language>/p/<shop>/<program>/leaderboard/ (programs that opt in)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.utils import translation

from analytics.selectors.leaderboard import portal_leaderboard
from programs.models import Participant, Program
from programs.selectors import program_texts
from programs.views import portal_view


@portal_view(require_participant=True)
def leaderboard(request, program: Program, participant: Participant):
    """Top referrers by first name and initial, the participant's rank and their milestone progress."""
    if not program.leaderboard_enabled:
        raise Http404
    board = portal_leaderboard(program=program, participant=participant)
    texts = program_texts(program=program, language=translation.get_language())
    context = {"program": program, "texts": texts, "participant": participant, "board": board}
    return render(request, "portal/leaderboard.html", context)
