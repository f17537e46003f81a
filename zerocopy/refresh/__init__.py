"""Segment refreshes: check → materialize under a deadline → read ids → drop → diff → swap.

Interface (used by the services, the CLI, the demo and the runners)::

    engine = RefreshEngine(db, adapter_factory, settings)   # adapter_factory: zerocopy.connections
    run = await engine.request(segment_id, trigger="api")   # queued RefreshRun; raises
                                                            # ZerocopyError(refresh_in_progress,
                                                            # details={"run_id": ...})
    run = await engine.execute(run.id)                      # to a final status; never raises
                                                            # for run failures
    run = await engine.request_cancel(run_id)               # any process; ends ``cancelled``
    run = await engine.refresh(segment_id, trigger="demo")  # request + execute

``adapter_factory`` is ``factory(source, credential, *, max_runtime_s=None) -> adapter``
(:class:`zerocopy.connections.AdapterFactory`); a :class:`zerocopy.secrets.SecretBox` is
accepted in its place. ``request(..., max_runtime_s=2)`` overrides the source's max runtime
for one run (tests and benchmarks; the API's 60-3600 s bound is validated by the services).

Run statuses: ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``timed_out`` |
``cancelled``. Failed runs carry ``error_code``/``error_message`` (codes from
:mod:`zerocopy.errors`: the SQL check's codes, warehouse codes, ``worker_lost``,
``internal_error``). Whatever the outcome, the previous membership is untouched unless the
run succeeded, and the temporary table is dropped (``temp_table_dropped``).
"""

from zerocopy.refresh.engine import ClaimedRun, RefreshEngine, RunHooks, catalog_mapping

__all__ = ["ClaimedRun", "RefreshEngine", "RunHooks", "catalog_mapping"]
