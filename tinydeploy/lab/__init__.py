"""Classroom kit set-up: `tinydeploy lab check` (every board flashed with a self-test and judged)."""
