"""Assignment `hard_em`: hard EM for the prankster's face and for a Gaussian mixture, and k-means."""

from dataclasses import replace

from ...engine import Assignment, Task

ORDER = 3  # position in the course (autograder.assignments.available())

_LOG_P = ("calculate_log_probability",)
_STEPS = ("calculate_log_probability", "calculate_lower_bound", "run_e_step", "run_m_step")

ASSIGNMENT = Assignment(
    id="hard_em",
    title="Hard EM: the prankster's face again, Gaussian mixtures and k-means",
    tasks=[
        Task("calculate_log_probability", "(X, F, B, s)",
             "ll[d, k] = log p(X_k | d_k = d, F, B, s) (as in the prankster assignment)"),
        Task("calculate_lower_bound", "(X, F, B, s, a, q, hard_EM=False)",
             "the lower bound; with hard_EM, of a point-mass q", isolated_from=_LOG_P),
        Task("run_e_step", "(X, F, B, s, a, hard_EM=False)",
             "the posterior q; with hard_EM, a point mass at the most probable position", isolated_from=_LOG_P),
        Task("run_m_step", "(X, q, w, hard_EM=False)", "the parameters maximising the bound for fixed q"),
        Task("run_EM", "(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50, hard_EM=False)",
             "EM or hard EM until the bound stops improving", isolated_from=_STEPS),
        Task("e_step_spherical", "(X, pi, mu, s2, hard_EM=False)",
             "responsibilities of a mixture with one shared covariance s2 * I; one-hot with hard_EM"),
        Task("m_step_spherical", "(X, gamma)", "(pi, mu, s2) maximising the expected complete-data log-likelihood"),
        Task("kmeans", "(X, mu, max_iter=100)", "Lloyd's algorithm from the centres mu: (centres, labels)"),
    ],
)

# Registering the checks (each module adds its checks to ASSIGNMENT).
from . import checks_prankster, checks_gmm  # noqa: E402,F401

# The checks a student runs in the notebook answer within seconds even when a function hangs: a
# correct function takes well under a second on their inputs, so 7 s is plenty, and after one time-out
# the runner waits less (a hanging function costs 9 s in all, not minutes). Loops that run
# on are stopped earlier still, by the run_EM watcher. Checks run only when grading keep their limits.
STUDENT_SIDE_TIMEOUT = 7.0
ASSIGNMENT.checks[:] = [c if c.needs_reference else replace(c, timeout=min(c.timeout, STUDENT_SIDE_TIMEOUT))
                        for c in ASSIGNMENT.checks]
