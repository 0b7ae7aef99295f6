"""Helpers shared by the portal's tests."""

from __future__ import annotations

from unittest import mock

from portal.tasks import send_invites


def invite_task_kwargs(send_task: mock.Mock) -> dict:
    """What the invite service enqueued (portal.tasks.send_invites, sent by name once the request committed): the
    keyword arguments a worker runs the task with."""
    send_task.assert_called_once()
    (name,), options = send_task.call_args
    assert name == send_invites.name
    return options["kwargs"]
