"""Joining, signing in (emailed one-time link or the shop's signed link), signing out, the participant's data
export and account deletion."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal import services
from portal.views.base import join_form, messages_of, page, portal_view, session_key, start_session, whereabouts
from programs.models import Participant, Program
from programs.services import participant_erase
from referral_saas.errors import ApplicationError
from tracking.clicks import client_ip
from tracking.selectors import participant_export
from tracking.services import test_referrer_join


@require_POST
@portal_view()
def join(request, program: Program, participant: Participant | None):
    form = join_form(program, request.POST)
    if not program.is_live():
        messages.error(request, _("This program is not running at the moment."))
        return page(request, "portal/landing.html", program, status=422, form=form)
    if not form.is_valid():
        return page(request, "portal/landing.html", program, status=400, form=form)
    try:
        services.portal_link_send(
            program=program,
            email=form.cleaned_data["email"],
            name=form.cleaned_data["name"],
            consent=form.cleaned_data["marketing_consent"],
            language=translation.get_language(),
            ip=client_ip(request),
        )
    except ApplicationError as exc:
        for message in messages_of(exc):
            form.add_error(None, message)
        return page(request, "portal/landing.html", program, status=exc.status_code, form=form)
    return page(
        request,
        "portal/check_email.html",
        program,
        email=form.cleaned_data["email"],
        minutes=services.LINK_MAX_AGE // 60,
    )


@require_http_methods(["GET", "POST"])
@portal_view()
def sign_in(request, program: Program, participant: Participant | None, token: str):
    """GET shows a button; the POST uses the one-time token. Mail scanners that open links cannot burn it, and
    nobody can be signed into someone else's account by a link they were sent."""
    if request.method == "GET":
        return page(request, "portal/sign_in_confirm.html", program)
    try:
        participant = services.portal_link_verify(program=program, token=token, **whereabouts(request))
    except ApplicationError as exc:
        return page(request, "portal/link_problem.html", program, status=400, message=exc.message)
    start_session(request, program, participant)
    return redirect(request.path.split("sign-in/")[0])


@portal_view()
def sso(request, program: Program, participant: Participant | None):
    params = request.GET
    try:
        participant = services.portal_sso_verify(
            program=program,
            external_id=params.get("participant", ""),
            email=params.get("email", ""),
            ts=params.get("ts", ""),
            sig=params.get("sig", ""),
            **whereabouts(request),
        )
    except ApplicationError as exc:
        return page(request, "portal/link_problem.html", program, status=403, message=exc.message)
    start_session(request, program, participant)
    return redirect(request.path.split("sso/")[0])


@portal_view(require_participant=True)
def export_data(request, program: Program, participant: Participant):
    response = JsonResponse(participant_export(participant=participant), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="my-referral-data.json"'
    return response


@require_http_methods(["GET", "POST"])
@portal_view(require_participant=True)
def delete_account(request, program: Program, participant: Participant):
    if request.method == "POST":
        participant_erase(participant=participant)
        request.session.flush()
        return page(request, "portal/deleted.html", program)
    return page(request, "portal/delete_confirm.html", program, participant=participant)


@require_POST
@portal_view()
def sign_out(request, program: Program, participant: Participant | None):
    request.session.pop(session_key(program), None)
    return redirect(request.path.rsplit("sign-out/", 1)[0])


@require_POST
@portal_view()
def test_referrer(request, program: Program, participant: Participant | None):
    """The shop's staff (owner or admin, signed in to the admin) open their program's portal as its test-mode "Test
    referrer" (the install page's button): the portal as a customer sees it, with a code and link that work with the
    shop's test API key, so the whole loop can be tried in test mode from the hosted portal. 403 for anyone else."""
    if not services.staff_may_test(user=request.user, merchant=program.merchant):
        raise PermissionDenied
    tester = test_referrer_join(merchant=program.merchant, program=program)
    start_session(request, program, tester)
    return redirect("portal_home", merchant=program.merchant.slug, program=program.slug)
