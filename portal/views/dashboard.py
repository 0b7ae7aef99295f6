"""The participant's dashboard: their link, code and QR, the share buttons, invitations to friends."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import quote, urlencode

import segno
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from portal import services
from portal.forms import InviteForm
from portal.selectors import friend_statuses
from portal.views.base import closed_notice, code_for, code_offers, join_form, page, portal_view
from portal.views.rewards import rewards_context
from programs.models import Participant, Program, ShareEvent
from referral_saas.errors import ApplicationError
from tracking import selectors as tracking_selectors
from tracking.models import ReferralCode
from tracking.selectors import link_for


class _ExternalRedirect(HttpResponseRedirect):
    allowed_schemes = ["http", "https", "mailto", "sms"]


class _ExternalSeeOther(_ExternalRedirect):
    status_code = 303  # after a POST: the browser opens the target with a GET


SHARE_CHANNELS = [
    ("email", gettext_lazy("Email")),
    ("whatsapp", "WhatsApp"),
    ("facebook", "Facebook"),
    ("x", "X"),
    ("linkedin", "LinkedIn"),
    ("telegram", "Telegram"),
    ("vk", "VK"),
    ("sms", gettext_lazy("Text message")),
]


def _share_target(channel: str, program: Program, code: ReferralCode) -> str:
    link = link_for(code.code)
    offer = code_offers(program, code)["referee_offer"] or _("Have a look at %(shop)s") % {
        "shop": program.merchant.name
    }
    tagged = f"{link}?{urlencode({'utm_source': channel, 'utm_medium': 'referral'})}"
    text = f"{offer} {tagged}"
    subject = _("A gift from me at %(shop)s") % {"shop": program.merchant.name}
    targets = {
        "email": f"mailto:?subject={quote(subject)}&body={quote(text)}",
        "whatsapp": f"https://wa.me/?text={quote(text)}",
        "facebook": f"https://www.facebook.com/sharer/sharer.php?u={quote(tagged, safe='')}",
        "x": f"https://x.com/intent/post?text={quote(offer)}&url={quote(tagged, safe='')}",
        "linkedin": f"https://www.linkedin.com/sharing/share-offsite/?url={quote(tagged, safe='')}",
        "telegram": f"https://t.me/share/url?url={quote(tagged, safe='')}&text={quote(offer)}",
        "vk": f"https://vk.com/share.php?url={quote(tagged, safe='')}&title={quote(offer)}",
        "sms": f"sms:?&body={quote(text)}",
    }
    if channel not in targets:
        raise Http404
    return targets[channel]


@portal_view()
def home(request, program: Program, participant: Participant | None):
    if participant is None:
        return page(request, "portal/landing.html", program, form=join_form(program))
    return _dashboard(request, program, participant, invite_form=InviteForm())


def _dashboard(request, program: Program, participant: Participant, *, invite_form: InviteForm, status: int = 200):
    code = code_for(participant, program)
    offers = code_offers(program, code)
    friends = friend_statuses(participant=participant, program=program)
    return page(
        request,
        "portal/dashboard.html",
        program,
        status=status,
        participant=participant,
        code=code,
        own_offer=offers["referrer_offer"],
        friend_offer=offers["referee_offer"],
        link=link_for(code.code),
        stats=tracking_selectors.participant_stats(participant=participant, program=program),
        friends=friends,
        friends_in_review=sum(1 for friend in friends if friend.status == "under_review"),
        share_channels=SHARE_CHANNELS,
        invite_form=invite_form,
        **rewards_context(request, program, participant),
    )


@require_POST
@portal_view(require_participant=True)
def invite(request, program: Program, participant: Participant):
    """Sent: back to the dashboard with a message. Not sent: the dashboard again with what was typed and the
    errors next to the fields (nothing is lost). A program that is not running sends none (the form is hidden)."""
    closed = closed_notice(program)
    if closed:
        messages.error(request, closed)
        return redirect(request.path.rsplit("invite/", 1)[0])
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, program, participant, invite_form=form, status=400)
    try:
        sent = services.invites_send(
            participant=participant, program=program, emails=form.email_list(), message=form.cleaned_data["message"]
        )
    except ApplicationError as exc:
        for field, errors in (exc.fields or {"": [exc.message]}).items():
            for message in errors:
                form.add_error(field if field in form.fields else "emails", str(message))
        return _dashboard(request, program, participant, invite_form=form, status=exc.status_code)
    messages.success(request, _("Invitations on their way: %(n)d.") % {"n": len(sent)})
    return redirect(request.path.rsplit("invite/", 1)[0])


QR_FORMATS = ("png", "svg")


@require_http_methods(["GET", "HEAD", "POST"])
@portal_view(require_participant=True)
def share(request, program: Program, participant: Participant, channel: str):
    """A share button. A POST (the buttons are small forms; the copy button posts when it copies) counts the share,
    once per channel and day, and opens the network's share page (303). A GET (an old link, a crawler, a link
    prefetch, a reload) only opens it, and counts nothing. A program that is not running shares nothing: back to the
    dashboard and its banner."""
    closed = closed_notice(program)
    if closed:
        messages.error(request, closed)
        return redirect("portal_home", merchant=program.merchant.slug, program=program.slug)
    if channel in (ShareEvent.Channel.COPY, ShareEvent.Channel.NATIVE):  # nothing to open: the page did it
        response = HttpResponse(status=204)
    elif channel == ShareEvent.Channel.QR:  # the download buttons: the QR file itself is a plain GET
        fmt = request.POST.get("format", "")
        if fmt not in QR_FORMATS:
            raise Http404
        qr = reverse("portal_qr", kwargs={"merchant": program.merchant.slug, "program": program.slug, "fmt": fmt})
        response = HttpResponseRedirect(f"{qr}?download=1", status=303)
    else:
        target = _share_target(channel, program, code_for(participant, program))
        response = _ExternalSeeOther(target) if request.method == "POST" else _ExternalRedirect(target)
    if request.method == "POST":
        services.share_record(participant=participant, program=program, channel=channel)
    return response


@portal_view(require_participant=True)
def qr_code(request, program: Program, participant: Participant, fmt: str):
    if fmt not in QR_FORMATS:
        raise Http404
    code = code_for(participant, program)
    qr = segno.make(f"{link_for(code.code)}?utm_source=qr&utm_medium=referral", error="m")
    buffer = BytesIO()
    if fmt == "png":
        qr.save(buffer, kind="png", scale=10, border=2)
        content_type = "image/png"
    else:
        qr.save(buffer, kind="svg", scale=10, border=2, title=code.code)
        content_type = "image/svg+xml"
    response = HttpResponse(buffer.getvalue(), content_type=content_type)
    if request.GET.get("download"):  # counted by the download button's POST (share/qr/), never by a GET
        response["Content-Disposition"] = f'attachment; filename="referral-{code.code}.{fmt}"'
    return response
