"""A long-running monitoring activity that survives the death of its worker.

The activity polls an S3 bucket (template.yaml's ExamplesBucket; moto's S3 in the embedded
stack) until an object appears, heartbeating its iteration count each round. When its worker
process is killed, the heartbeats stop, the engine times the attempt out (HEARTBEAT) and
retries it per its retry policy; another worker takes the retry and resumes counting from
``activity.heartbeat_details()``, the last count the dead worker reported.

    python -m examples.monitor                                # embedded local stack
    python -m examples.monitor --address URL --bucket NAME    # a running stack

See :mod:`examples.monitor.app` (workflow, activity), :mod:`examples.monitor.worker` (the
killable worker process) and :mod:`examples.monitor.__main__` (the scenario).
"""
