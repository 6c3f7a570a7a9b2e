"""Assignment `gmm`: EM for Gaussian mixtures (tasks, fixtures and checks)."""

from ...engine import Assignment, Task

ORDER = 1  # position in the course (autograder.assignments.available())

_STEPS = ("E_step", "M_step", "compute_vlb")

ASSIGNMENT = Assignment(
    id="gmm",
    title="EM for Gaussian mixture models",
    tasks=[
        Task("E_step", "(X, pi, mu, sigma)", "responsibilities gamma (N, C)"),
        Task("M_step", "(X, gamma)", "parameters (pi, mu, sigma) maximising Q"),
        Task("compute_vlb", "(X, pi, mu, sigma, gamma)", "the variational lower bound",
             isolated_from=("E_step", "M_step")),
        Task("log_likelihood", "(X, pi, mu, sigma)", "the observed-data log-likelihood",
             isolated_from=_STEPS),
        Task("train_EM", "(X, C, rtol=1e-6, max_iter=100, restarts=10)",
             "EM with restarts, keeping the best", isolated_from=_STEPS + ("log_likelihood",)),
        Task("assert_bound_never_decreases",
             "(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20)",
             "debugging: the bound never decreases"),
        Task("assert_m_step_maximises", "(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0)",
             "debugging: the M-step maximises Q"),
        Task("assert_bound_is_tight",
             "(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0)",
             "debugging: the bound is tight after an E-step"),
        Task("assert_recovers_parameters", "(train_EM, pi, mu, sigma, n_points=2000, n_datasets=5, tol=0.15)",
             "debugging: parameters are recovered from simulated data"),
        Task("E_step_diag", "(X, pi, mu, var)", "log responsibilities, diagonal covariances, no loops"),
        Task("M_step_diag", "(X, gamma)", "M-step with diagonal covariances, no loops"),
    ],
)

# Registering the checks (each module adds its checks to ASSIGNMENT).
from . import checks_steps, checks_bound, checks_training, checks_debugging, checks_diagonal  # noqa: E402,F401
