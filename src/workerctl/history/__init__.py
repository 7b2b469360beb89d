"""The run history's storage engine: everything under ``.workerctl/history/``.

Nothing outside this package touches a shard, a marker, a lock or a path under the
history; the rest of workerctl goes through ``History`` (``store``).

Modules: ``reader`` (reading shards and run files, strictly), ``store``
(``History``: create, save, get, resolve a prefix, list by filter, prune,
reindex, the commit path), ``indexes`` (the cross-run indexes:
refs by worker, record, status and error kind; hourly and daily counts),
``ledger`` (the side-effect ledger), ``change`` (the change record), ``tables`` (small TinyDB files read and
written directly), ``sweep`` (liveness and the crash sweep), ``layout`` (the file
formats), ``reindex`` (``runs reindex`` in bounded memory, holding the lock only
briefly) and ``spill`` (its scratch files, sorted on disk).

Invariants (what a reader may see at any instant, and what a crash leaves):

- One commit path: every change of a run becomes one change record
  (``store.Change``: the run, what its run file held, its slot and summary),
  applied under the lock to the run file and the shard, then handed to the
  stores derived from them in one place (``History._hand_over``): the ledger and
  the cross-run indexes take the record and read through their own reader
  (``reader.Reader``), never through the store's private methods. A further
  derived index takes the same record there.
- Every file is replaced atomically (temp file, fsync, rename), so a reader sees
  a whole old file or a whole new one. A run's files are written in one order
  under the history lock: marker, run file, index shard, ledger, cross-run
  indexes, marker removed; a crash or a full disk at any point leaves a marker
  naming a dead process, and the next command that can write settles the run
  from its run file, the truth (``sweep.mark_crashed``, ``History.settle``). A
  run's end is written there even on a full disk: into space its process set aside
  before the run was made (``History._set_aside``, ``History._keep_outcome``).
- Files written ahead of the lock (a save's run file and ledger files, fsynced
  while another thread or process holds the lock) live in
  ``ahead/HOST.PID.START/``, which a maintenance command (reindex, prune) removes
  only once that process is gone. Every maintenance command holds the lock for
  what it changes.
- No command holds the lock long: ``runs reindex`` builds its new index off the
  lock (``reindex.stage/``) while a journal (``reindexing/``, there only while a
  reindex runs) takes a note of every run changed meanwhile, written at the commit
  path and by prune under the lock before anything else of the change; the
  reindex catches up on the notes and swaps the stage in under one short hold. A
  note that cannot be written removes the journal, and the reindex then stops
  without swapping anything in; so does a journal removed because its owner (pid,
  start, host) is gone or cannot be read, which the next writer or maintenance
  command does rather than note changes for nobody. No hold grows with the history: the ledger's
  partitions are merged and fsynced ahead into the stage and only renamed in under
  the lock (a file changed meanwhile merged again there); the search index, built
  from the same scan of the run files, keeps the journal open after the history's
  swap and, under the lock, reads again only the runs it names.
- Order is by sequence: a run's slot (index shard, document number), given out
  under the lock at creation, never its clock time. ``runs reindex`` keeps the
  slots the current index holds and merges runs copied in from elsewhere by
  creation time; it streams (its memory does not grow with the history) and
  changes nothing in place before the new index is complete.
- Recovery repairs what a crash touched: a run's note (one per run, a batch's
  staged chain too) is repaired from the shards by the next command, a start
  too, once the sweep has settled that run (``sweep.repair_cut_writes``); a prune (in batches, the lock let
  go between them) is finished from its journal, which names the runs and their
  summaries, recounting their hours, days and workers; a reindex's note needs
  nothing. None of them rebuilds every cross-run index under the lock.
- Reading never needs to write: when a repair cannot be written (a full disk, a
  read-only mount) or the lock stays held past ``storage.lock.REPAIR_WAIT`` (a
  writer stopped or stuck: every repair a reader makes waits through
  ``FileLock.within``), readers answer from disk, a run whose process is gone shown
  as crashed (``History.unsettled``; at its marker's slot if its index entry was
  never written), and the next command that can write records it (a start does,
  under its own hold, before the duplicate guard).
"""
