"""The run: its stages, one module each, in the order a run takes them.

- ``cycle``: one run (its row in ``runs``, the lease, the stages in order);
- ``ingest`` (with ``validate``, ``rebase`` and ``observations``): fetch only what is new, check it,
  store it, one transaction per series;
- ``plan`` (with ``state``: what the tables say; ``settle``: the rows a trained unit writes): what to
  train and how, per series or across a group, and which fit a group keeps;
- ``train`` (with ``tasks``: what a worker runs): the planned work on the configured executor;
- ``store`` (with ``adaptive``: the intervals' adaptive factor): one transaction per series.

``values`` holds what the stages hand each other (and the fingerprints of a fit's settings); it
imports none of them. This package imports nothing here: import the stage you need.
"""
