"""Ray clusters inside batch allocations: job-script rendering (:mod:`.render`), the
node-count wait used by those scripts (:mod:`.wait`) and submission (``hpcnas ray-submit``)."""
from __future__ import annotations

from hpcnas.ray_cluster.render import SCHEDULERS, RayJobSpec, parse_job_id, render_script, submit_command

__all__ = ["SCHEDULERS", "RayJobSpec", "parse_job_id", "render_script", "submit_command"]
