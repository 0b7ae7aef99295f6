"""Prepared statements are per PostgreSQL session: threads of one process (gunicorn's gthread workers) each have
their own connection and must each prepare their own, whatever the others did."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from referral_saas import prepared

pytestmark = pytest.mark.django_db(transaction=True)


def test_threads_sharing_a_process_each_prepare_on_their_own_connection():
    rounds, threads_count = 30, 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []
    results: list[int] = []

    def run(n: int) -> None:
        try:
            for i in range(rounds):
                barrier.wait()
                results.append(prepared.execute("rs_test_threads", "SELECT $1::int + 1", [n * 1000 + i])[0])
                if i % 10 == 9:
                    connection.close()  # a reconnect (CONN_MAX_AGE, a restarted server) prepares again
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
            barrier.abort()
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sorted(results) == sorted(n * 1000 + i + 1 for n in range(threads_count) for i in range(rounds))


def test_a_rolled_back_transaction_keeps_what_it_prepared():
    from django.db import transaction

    def prepare_then_fail() -> None:
        with transaction.atomic():
            assert prepared.execute("rs_test_rollback", "SELECT $1::int * 2", [21]) == (42,)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        prepare_then_fail()
    assert prepared.execute("rs_test_rollback", "SELECT $1::int * 2", [5]) == (10,)


def test_a_lookup_prepared_on_an_empty_table_is_planned_for_any_size():
    """The plan is made once, when the statement is prepared: made for a new shop's empty idempotency table it was
    a sequential scan, kept while the table grew (every order then read the whole table)."""
    from referral_saas.tenancy.models import IdempotencyRecord
    from tests.factories import MerchantFactory

    merchant = MerchantFactory()
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # statistics of an empty table, as autovacuum leaves a new one
    sql = f"SELECT key FROM {table} WHERE merchant_id = $1 AND livemode = $2 AND key = $3"  # noqa: S608
    assert prepared.execute("rs_test_empty_plan", sql, [merchant.pk, True, "k-1"]) is None
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN EXECUTE rs_test_empty_plan (%s, %s, %s)", [merchant.pk, True, "k-1"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone() == ("on",)  # set back for every other query of the session
    assert "Index" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_a_failed_first_execution_leaves_sequential_scans_allowed():
    with pytest.raises(Exception):  # noqa: B017, PT011  any database error
        prepared.execute("rs_test_failed_plan", "SELECT 1 / $1::int", ["not a number"])
    with connection.cursor() as cursor:  # the same session (autocommit: no transaction undid the SET)
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone() == ("on",)


def test_finding_a_friends_referral_reads_a_few_pages_however_many_referrals_the_shop_has(tenant, program, referrer):
    """attribution_facts looks up the friend's referral in any program by (merchant, mode, friend). The unique index
    once led with the program, and the lookup read every referral of the merchant on each order (86 pages for one
    unknown friend in the benchmark's shop, growing with the shop). 5,000 referrals here: a few pages still."""
    from django.utils import timezone

    from tracking.models import Referral
    from tracking.selectors import attribution_facts

    code, now = referrer[1], timezone.now()
    with connection.cursor() as cursor:
        # Statistics of a new shop's near-empty table (autovacuum's ANALYZE comes later, or not before the plan).
        cursor.execute("ANALYZE tracking_referral")
    Referral.objects.for_merchant(tenant.merchant).bulk_create(
        Referral(
            merchant=tenant.merchant, livemode=True, program=program, referrer=referrer[0], code=code,
            referee_external_id=f"friend-{n}", referee_email=f"friend-{n}@example.org",
            referee_email_normalized=f"friend-{n}@example.org", status=Referral.Status.CONVERTED, touched_at=now,
        )
        for n in range(5000)
    )  # fmt: skip
    arguments = dict(
        merchant=tenant.merchant, livemode=True, order_id="o-new", external_id="someone-new",
        email_normalized="someone-new@example.org", program_id=None, before=timezone.now(), code=code.code,
    )  # fmt: skip
    facts = attribution_facts(**arguments)  # prepares the statement on this connection
    assert facts.referral_id is None
    assert facts.code.pk == code.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE rs_attribution_facts (%s, true, 'o-new', 'someone-new', "
            "'someone-new@example.org', NULL, now(), %s)",
            [tenant.merchant.pk, code.code_normalized],
        )
        (plan,) = cursor.fetchone()
    pages = plan[0]["Plan"]["Shared Hit Blocks"] + plan[0]["Plan"]["Shared Read Blocks"]
    assert pages < 60, pages
    assert attribution_facts(**{**arguments, "external_id": "friend-4321"}).referral_id is not None


def _friend_and_order(tenant, referrer, *, friend: str, order_id: str):
    from tracking.models import Conversion, Referral

    participant, code = referrer
    referral = Referral(
        merchant=tenant.merchant, livemode=True, program=code.program, referrer=participant, code=code,
        referee_external_id=friend, referee_email=None, referee_email_normalized=None, status="converted",
        touched_at=timezone.now(),
    )  # fmt: skip
    conversion = Conversion(
        merchant=tenant.merchant, livemode=True, order_id=order_id, amount=Decimal("10.00"), currency="PLN",
        status="attributed", program=code.program, occurred_at=timezone.now(),
    )  # fmt: skip
    return referral, conversion


def test_a_friends_first_referral_and_the_order_are_written_in_one_statement_linked(tenant, referrer):
    from tracking.models import Conversion

    referral, conversion = _friend_and_order(tenant, referrer, friend="f-1", order_id="o-1")
    assert prepared.insert_unless_taken(conversion, parent=referral, via="referral") == (referral.pk, conversion.pk)
    assert conversion.referral_id == referral.pk  # in hand, as the rewards pipeline's message needs it
    stored = Conversion.objects.for_merchant(tenant.merchant).get(pk=conversion.pk)
    assert stored.referral_id == referral.pk


def test_what_a_unique_constraint_refuses_is_skipped_without_an_error(tenant, referrer):
    from tracking.models import Conversion, Referral

    first = _friend_and_order(tenant, referrer, friend="f-1", order_id="o-1")
    prepared.insert_unless_taken(first[1], parent=first[0], via="referral")
    same_friend = _friend_and_order(tenant, referrer, friend="f-1", order_id="o-2")
    assert prepared.insert_unless_taken(same_friend[1], parent=same_friend[0], via="referral") == (None, None)
    same_order = _friend_and_order(tenant, referrer, friend="f-2", order_id="o-1")
    referral_id, order_id = prepared.insert_unless_taken(same_order[1], parent=same_order[0], via="referral")
    assert referral_id is not None
    assert order_id is None  # the caller deletes the referral it does not want (tracking.attribution)
    assert same_order[1].referral_id is None
    alone = _friend_and_order(tenant, referrer, friend="f-3", order_id="o-1")[1]
    assert prepared.insert_unless_taken(alone) == (None, None)
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 1
    assert Referral.objects.for_merchant(tenant.merchant).count() == 2
