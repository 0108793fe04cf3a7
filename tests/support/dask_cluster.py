"""A real Dask cluster on 127.0.0.1 for the tests: a scheduler in this process and two worker
processes."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def local_cluster():
    """A scheduler in this process and two single-threaded worker processes (each under a nanny,
    which restarts a worker that dies). allowed-failures = 0: a task whose worker dies fails at once
    instead of being retried elsewhere, so a kill shows up in the tables."""
    import dask
    from distributed import Client, LocalCluster

    # No statistical profiler in the workers (a sample every 10 ms, idle or not: a third of an idle
    # worker's CPU, which the other tests running beside it would otherwise pay for).
    quiet = {"distributed.scheduler.allowed-failures": 0, "distributed.worker.profile.enabled": False}
    with dask.config.set(quiet):
        local = LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
    client = Client(local.scheduler_address, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=120)
        yield local, client
    finally:
        client.close()
        local.close()
