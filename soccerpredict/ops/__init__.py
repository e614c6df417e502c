"""Operating the jobs on a shared cluster: entrypoint deadlines, a guard against overlapping or
replayed runs, and the selection of RayJobs to delete."""
