"""wrpsim's Hydra launcher plugin for Ray: each job of a `-m` sweep is one Ray task.

Select it with `hydra/launcher=ray` (preset `conf/hydra/launcher/ray.yaml`). Hydra discovers the
plugin by scanning the `hydra_plugins` namespace package, so this package must stay free of
heavy imports at module level: Ray is imported only when a sweep is launched.
"""
