"""Where sweep points run. Each point is a self-contained job (bench.execution.jobs: the resolved spec in, the
result out); an executor runs jobs in this process (local) or on a Ray cluster (ray_executor), and the runner
writes every result it gets back with the one atomic store."""
