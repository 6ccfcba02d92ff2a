"""Host-routed file processing: every step of one file runs on the host that holds the file.

A file is downloaded by whichever host takes the task from the shared task list, and that host
answers with the name of its own task list (``host-<name>``): processing and uploading are then
scheduled there, so they find the file on local disk. When the host dies, its tasks time out and
the workflow starts over on another host (a bounded loop in workflow code). This is Cadence's
"host-specific task list" pattern (its fileprocessing sample).

    python -m examples.hosts                  # embedded local stack, started and stopped here
    python -m examples.hosts --address URL    # a running stack (cadenza dev, or API Gateway)

See :mod:`examples.hosts.app` for the workflow and activities, :mod:`examples.hosts.host` for
one host's worker process, and :mod:`examples.hosts.__main__` for the failover scenario.
"""
