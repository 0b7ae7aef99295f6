from celery import shared_task

from portal.services import SEND_INVITES_TASK, invite_deliver
from programs.models import Invite
from referral_saas.tenancy.models import Merchant


@shared_task(
    name=SEND_INVITES_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_invites(*, merchant_id: int, invite_ids: list[int]) -> None:
    merchant = Merchant.objects.get(pk=merchant_id)
    invites = Invite.objects.for_merchant(merchant).select_related("program", "participant", "merchant")
    for invite in invites.filter(pk__in=invite_ids):
        invite_deliver(invite=invite)
