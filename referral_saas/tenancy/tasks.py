from celery import shared_task

from referral_saas import idempotency
from referral_saas.tenancy import services


@shared_task(name="referral_saas.tenancy.purge_expired_invitations", acks_late=True, ignore_result=True)
def purge_expired_invitations() -> int:
    return services.invitations_purge_expired()


@shared_task(name="referral_saas.tenancy.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> int:

    return idempotency.purge_expired()
