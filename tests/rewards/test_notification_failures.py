"""Emails that cannot be sent: a real SMTP conversation (a small server on a loopback port) or a refused
connection. A refused address is given up on at once, a broken mail server is retried until MAX_ATTEMPTS, and the
sweeper leaves what was given up on alone."""

from __future__ import annotations

import socket
import socketserver

import pytest
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rewards.models import Notification, Reward
from rewards.services import notification_send, notifications_send_many, reward_release, rewards_sweep
from rewards.services.notify import MAX_ATTEMPTS
from tests.rewards.helpers import order, process, rule
from tests.threads import serve_in_thread, stop_serving

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"


class _Smtp(socketserver.StreamRequestHandler):
    """Speaks just enough SMTP to take messages; counts the connections and the messages it was given."""

    refuse_recipients = False
    connections = 0
    messages: list[bytes] = []

    def handle(self):
        type(self).connections += 1
        self.wfile.write(b"220 test ESMTP\r\n")
        for raw in self.rfile:
            verb = raw[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"RCPT" and self.refuse_recipients:
                self.wfile.write(b"550 5.1.1 No such user here\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                type(self).messages.append(b"".join(iter(self.rfile.readline, b".\r\n")))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL FROM, RCPT, RSET, NOOP
                self.wfile.write(b"250 ok\r\n")


class _RefusingSmtp(_Smtp):
    """Refuses every recipient with 550, as a mail server does for an unknown mailbox."""

    refuse_recipients = True


@pytest.fixture
def refusing_smtp():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusingSmtp)
    server.daemon_threads = True
    thread = serve_in_thread(server)
    yield server.server_address[1]
    stop_serving(server, thread)


@pytest.fixture
def closed_port():
    with socket.socket() as s:  # a port nobody listens on: connecting is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _owed_email(tenant, referrer) -> Notification:
    process(tenant, order(tenant, referrer[1])["id"])
    return Notification.objects.for_merchant(tenant.merchant).get(kind=Notification.Kind.FRIEND_PURCHASED)


def test_a_refused_address_is_given_up_on_at_once_and_never_sent_again(tenant, program, referrer, refusing_smtp):
    rule(program)
    note = _owed_email(tenant, referrer)
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=refusing_smtp, EMAIL_USE_TLS=False):
        assert notification_send(merchant=tenant.merchant, notification_id=note.pk) is False  # no exception: final
    note.refresh_from_db()
    assert note.sent_at is None
    assert note.failed_at is not None
    assert note.attempts == 1
    assert "550" in note.last_error
    assert "No such user" in note.last_error
    # Never again, whoever asks: the task, or the sweeper (which does not even enqueue it).
    assert notification_send(merchant=tenant.merchant, notification_id=note.pk) is False
    assert mail.outbox == []
    note.created_at = timezone.now() - timezone.timedelta(minutes=5)
    note.save(update_fields=["created_at"])
    assert rewards_sweep()["notifications"] == 0


def test_a_mail_server_that_is_down_is_retried_then_given_up_on(tenant, program, referrer, closed_port):
    rule(program)
    note = _owed_email(tenant, referrer)
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port, EMAIL_TIMEOUT=2):
        for attempt in range(1, MAX_ATTEMPTS):
            with pytest.raises(ConnectionRefusedError):  # raised again: the Celery task retries it
                notification_send(merchant=tenant.merchant, notification_id=note.pk)
            note.refresh_from_db()
            assert (note.attempts, note.failed_at, note.sent_at) == (attempt, None, None)
            assert note.last_error.startswith("ConnectionRefusedError")
        # The last try is recorded and given up on, without raising.
        assert notification_send(merchant=tenant.merchant, notification_id=note.pk) is False
    note.refresh_from_db()
    assert note.attempts == MAX_ATTEMPTS
    assert note.failed_at is not None


def test_the_mail_server_coming_back_sends_the_email_once(tenant, program, referrer, closed_port):
    rule(program, hold_days=0)
    note = _owed_email(tenant, referrer)
    down = override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port, EMAIL_TIMEOUT=2)
    with down, pytest.raises(ConnectionRefusedError):
        notification_send(merchant=tenant.merchant, notification_id=note.pk)
    assert notification_send(merchant=tenant.merchant, notification_id=note.pk) is True  # the test outbox again
    note.refresh_from_db()
    assert note.sent_at is not None
    assert note.attempts == 1
    assert note.failed_at is None
    assert len(mail.outbox) == 1
    assert notification_send(merchant=tenant.merchant, notification_id=note.pk) is False
    # The rest of the loop is not held up by the failed email.
    [reward] = Reward.objects.for_merchant(tenant.merchant)
    assert reward_release(merchant_id=tenant.merchant.pk, reward_id=reward.pk) == "issued"


# --- a batch's emails (rewards.send_notifications) ----------------------------------------------------------------


class _AcceptingSmtp(_Smtp):
    pass


@pytest.fixture
def accepting_smtp():
    _AcceptingSmtp.connections, _AcceptingSmtp.messages = 0, []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _AcceptingSmtp)
    server.daemon_threads = True
    thread = serve_in_thread(server)
    yield server.server_address[1]
    stop_serving(server, thread)


def _owed_emails(tenant, referrer, count: int) -> list[int]:
    for n in range(count):
        process(tenant, order(tenant, referrer[1], order_id=f"b-{n}", friend=f"friend{n}@example.org")["id"])
    notes = Notification.objects.for_merchant(tenant.merchant).filter(kind=Notification.Kind.FRIEND_PURCHASED)
    ids = list(notes.values_list("pk", flat=True))
    assert len(ids) == count
    return ids


def test_a_batchs_emails_go_over_one_mail_server_connection_each_once(tenant, program, referrer, accepting_smtp):
    rule(program)
    ids = _owed_emails(tenant, referrer, 4)
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=accepting_smtp, EMAIL_USE_TLS=False):
        assert notifications_send_many(merchant=tenant.merchant, notification_ids=ids) == (4, [])
        assert notifications_send_many(merchant=tenant.merchant, notification_ids=ids) == (0, [])  # sent once
    assert _AcceptingSmtp.connections == 1
    assert len(_AcceptingSmtp.messages) == 4
    sent = Notification.objects.for_merchant(tenant.merchant).filter(pk__in=ids, sent_at__isnull=False)
    assert sent.count() == 4


def test_a_batch_reads_the_same_whatever_its_size(tenant, program, referrer):
    rule(program)
    ids = _owed_emails(tenant, referrer, 4)
    with CaptureQueriesContext(connection) as one:
        notifications_send_many(merchant=tenant.merchant, notification_ids=ids[:1])
    with CaptureQueriesContext(connection) as three:
        notifications_send_many(merchant=tenant.merchant, notification_ids=ids[1:])
    assert len(three.captured_queries) == len(one.captured_queries)
    assert len(mail.outbox) == 4


def test_a_mail_server_that_is_down_leaves_a_batch_to_retry_one_by_one(tenant, program, referrer, closed_port):
    rule(program)
    ids = _owed_emails(tenant, referrer, 3)
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port, EMAIL_TIMEOUT=2):
        assert notifications_send_many(merchant=tenant.merchant, notification_ids=ids) == (0, sorted(ids))
    notes = Notification.objects.for_merchant(tenant.merchant).filter(pk__in=ids)
    assert {(n.attempts, n.sent_at, n.failed_at) for n in notes} == {(1, None, None)}
    assert all(n.last_error.startswith("ConnectionRefusedError") for n in notes)
    # The retries, one by one, send each once the server is back (the test outbox).
    assert [notification_send(merchant=tenant.merchant, notification_id=pk) for pk in ids] == [True] * 3


def test_a_refused_address_in_a_batch_is_given_up_on_and_not_retried(tenant, program, referrer, refusing_smtp):
    rule(program)
    ids = _owed_emails(tenant, referrer, 2)
    with override_settings(EMAIL_BACKEND=SMTP, EMAIL_HOST="127.0.0.1", EMAIL_PORT=refusing_smtp, EMAIL_USE_TLS=False):
        assert notifications_send_many(merchant=tenant.merchant, notification_ids=ids) == (0, [])
    notes = Notification.objects.for_merchant(tenant.merchant).filter(pk__in=ids)
    assert all(n.failed_at is not None and "550" in n.last_error for n in notes)
