"""An activity completed asynchronously, by a separate process that holds its task token.

The activity does not do the work itself: it forwards the request and its task token through
an SQS queue, calls ``activity.complete_async()`` and returns at once, freeing its worker. A
responder process (standing for another team's service, a human desk, a system that can only
be reached through a queue) reads the message, heartbeats the activity once to say it has it,
does the work and completes the activity by token with ``Client.complete_activity``.

    python -m examples.responder                  # embedded local stack
    python -m examples.responder --address URL    # a running stack

See :mod:`examples.responder.app` (workflow, forwarding activity),
:mod:`examples.responder.responder` (the responder process) and
:mod:`examples.responder.__main__` (the scenario).
"""
