"""The file-processing workflow and the activities of one host.

Why host-specific task lists: a downloaded file lives on one machine's disk, so the steps after
the download must run on that machine. Every host polls the shared :data:`DOWNLOADS` task list
(whoever is free takes the next download) and a task list of its own, :func:`host_task_list`;
the download answers with the latter and the workflow sends the next steps there.

Why the retry lives in workflow code and not in an activity retry policy: when a host dies, a
retry of *its* step cannot help (no other host has the file, and a task for the dead host's own
list is never taken). The whole sequence has to start over, on whichever host takes the new
download. Each host step therefore has tight timeouts that reveal a dead host
(schedule-to-start: nobody takes the task; heartbeat: the host stopped mid-work), no retry
policy, and the workflow catches the :class:`~cadenza.error.ActivityFailure` and tries again,
at most :attr:`FileJob.max_tries` times.

"Download", "process" and "upload" are real file operations on local directories that stand
for a remote store, a host's scratch disk and a results bucket: the file is copied into the
host's inbox, upper-cased into its work directory, and copied to the output directory.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cadenza import Registry, activity, workflow
from cadenza.error import ActivityFailure

#: The workflow's task list: the coordinator's decision worker polls it (no host does).
WORKFLOWS = "file-processing"
#: The shared task list every host polls for downloads.
DOWNLOADS = "file-downloads"

workflows = Registry()


def host_task_list(name: str) -> str:
    """The task list only host ``name`` polls."""
    return f"host-{name}"


@dataclass(frozen=True)
class FileJob:
    """One file to process.

    ``source`` is where the file comes from (a path standing for a URL); ``output_dir`` is where
    results are uploaded. ``host_timeout_seconds`` is how long a host may stay silent before it
    counts as dead: a host polls its own task list continuously and heartbeats while it works,
    so a live host never comes near it.
    """

    source: str
    output_dir: str
    max_tries: int = 3
    host_timeout_seconds: int = 5


@dataclass(frozen=True)
class Download:
    """What a download leaves behind: the file on one host, and how to reach that host."""

    host: str
    task_list: str
    path: str


@dataclass(frozen=True)
class Processed:
    """The workflow's result: who produced the output, where, after how many tries."""

    host: str
    output: str
    tries: int
    earlier_failures: tuple[str, ...] = ()


class FileHost:
    """One worker host: a name, a scratch directory, and the three activities run on it.

    ``work_seconds`` makes processing take that long (heartbeating as it goes), as a big file
    would: the failover demo uses it to have a host die mid-work.
    """

    def __init__(self, name: str, root: str | Path, *, work_seconds: float = 0.0) -> None:
        self.name = name
        self.root = Path(root)
        self.work_seconds = work_seconds
        self.inbox = self.root / "inbox"
        self.work = self.root / "work"
        for directory in (self.inbox, self.work):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def task_list(self) -> str:
        return host_task_list(self.name)

    @activity.method(name="download_file")
    def download(self, source: str) -> Download:
        """Fetch the file onto this host's disk; answer with this host's task list."""
        target = self.inbox / f"{activity.info().workflow_id}-{Path(source).name}"
        shutil.copyfile(source, target)
        return Download(host=self.name, task_list=self.task_list, path=str(target))

    @activity.method(name="process_file")
    async def process(self, path: str) -> str:
        """Transform the downloaded file (upper-case it); only this host has ``path``."""
        source = Path(path)
        if not source.is_file():  # scheduled on the wrong host: fail, do not guess
            raise FileNotFoundError(f"{path} is not on host {self.name}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.work_seconds
        while loop.time() < deadline:  # a big file: keep telling the engine we are alive
            activity.heartbeat(f"working on {source.name}")
            await asyncio.sleep(0.2)
        target = self.work / source.name
        target.write_text(source.read_text(encoding="utf-8").upper(), encoding="utf-8")
        return str(target)

    @activity.method(name="upload_file")
    def upload(self, path: str, output_dir: str) -> str:
        """Publish the processed file; the output names the host that made it."""
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"{path} is not on host {self.name}")
        target = Path(output_dir) / f"{source.stem}.{self.name}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)


def host_registry(host: FileHost) -> Registry:
    """The activities one host process serves (they are bound to its directories)."""
    registry = Registry()
    registry.register_activities(host)
    return registry


@workflows.workflow()
class ProcessFile:
    """Download, process and upload one file, all on one host; start over on a dead host."""

    @workflow.run
    async def run(self, job: FileJob) -> Processed:
        host_timeout = timedelta(seconds=job.host_timeout_seconds)
        failures: list[str] = []
        for attempt in range(1, job.max_tries + 1):
            try:
                download: Download = await workflow.execute_activity(
                    "download_file", Download, job.source,
                    task_list=DOWNLOADS,
                    # Any live host takes a download within a poll; a minute means none is up.
                    schedule_to_start_timeout=timedelta(minutes=1),
                    start_to_close_timeout=timedelta(seconds=30),
                )
                on_host: workflow.ActivityOptions = {
                    "task_list": download.task_list,
                    "schedule_to_start_timeout": host_timeout,  # the host is gone
                    "start_to_close_timeout": timedelta(minutes=10),
                    "heartbeat_timeout": host_timeout,  # the host died mid-work
                }
                processed: str = await workflow.execute_activity(
                    "process_file", str, download.path, **on_host)
                output: str = await workflow.execute_activity(
                    "upload_file", str, processed, job.output_dir, **on_host)
                return Processed(download.host, output, attempt, tuple(failures))
            except ActivityFailure as failure:
                failures.append(failure.reason)
                if attempt == job.max_tries:
                    raise
        raise AssertionError("unreachable: the last try returns or raises")


__all__ = [
    "DOWNLOADS",
    "WORKFLOWS",
    "Download",
    "FileHost",
    "FileJob",
    "ProcessFile",
    "Processed",
    "host_registry",
    "host_task_list",
    "workflows",
]
