"""Assignment `prankster`: EM recovers a face from 1000 very noisy camera shots (tasks and checks)."""

from dataclasses import replace

from ...engine import Assignment, Task

ORDER = 2  # position in the course (autograder.assignments.available())

_LOG_P = ("calculate_log_probability",)
_STEPS = ("calculate_log_probability", "calculate_lower_bound", "run_e_step", "run_m_step")

ASSIGNMENT = Assignment(
    id="prankster",
    title="Who hid the games? EM on noisy camera shots",
    tasks=[
        Task("calculate_log_probability", "(X, F, B, s)",
             "ll[d, k] = log p(X_k | d_k = d, F, B, s), shape (W-w+1, K)"),
        Task("calculate_lower_bound", "(X, F, B, s, a, q)", "the lower bound L(q, F, B, s, a)",
             isolated_from=_LOG_P),
        Task("run_e_step", "(X, F, B, s, a)", "the posterior q[d, k] over the face's position in each image",
             isolated_from=_LOG_P),
        Task("run_m_step", "(X, q, w)", "the parameters (F, B, s, a) maximising the bound for fixed q"),
        Task("run_EM", "(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50)",
             "EM until the bound stops improving; returns (F, B, s, a, LL)", isolated_from=_STEPS),
    ],
)

# Registering the checks (each module adds its checks to ASSIGNMENT).
from . import checks_steps, checks_em  # noqa: E402,F401

# The checks a student runs in the notebook answer within seconds even when a function hangs: a
# correct function takes well under a second on their inputs, so 7 s is plenty, and after one time-out
# the runner waits less (a hanging function costs 9 s in all, not minutes). Loops that run
# on are stopped earlier still, by the run_EM watcher. Checks run only when grading keep their limits.
STUDENT_SIDE_TIMEOUT = 7.0
ASSIGNMENT.checks[:] = [c if c.needs_reference else replace(c, timeout=min(c.timeout, STUDENT_SIDE_TIMEOUT))
                        for c in ASSIGNMENT.checks]
