"""Assignment `advi`: automatic differentiation variational inference (tasks, fixtures and checks)."""

from ...engine import Assignment, Task

ORDER = 4  # position in the course (autograder.assignments.available())

_MODEL = ("inverse_transform", "log_det_jacobian", "log_joint")
_DENSITY = _MODEL + ("log_joint_zeta",)
_GRADIENT = _DENSITY + ("grad_log_joint_zeta",)

ASSIGNMENT = Assignment(
    id="advi",
    title="Automatic differentiation variational inference",
    tasks=[
        Task("inverse_transform", "(zeta)", "theta = T^{-1}(zeta): back from the real line to (b0, b1, sigma)"),
        Task("log_det_jacobian", "(zeta)", "log |det J_{T^{-1}}(zeta)|"),
        Task("log_joint", "(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5)",
             "log p(y, theta), one value per draw"),
        Task("log_joint_zeta", "(zeta, x, y)", "the log joint in the unconstrained space",
             isolated_from=_MODEL),
        Task("grad_log_joint_zeta", "(zeta, x, y)", "its gradient with respect to zeta, one row per draw",
             isolated_from=_DENSITY),
        Task("elbo_mean_field", "(mu, omega, eta, x, y)", "Monte Carlo ELBO of the mean-field Gaussian",
             isolated_from=_GRADIENT),
        Task("grad_elbo_mean_field", "(mu, omega, eta, x, y)",
             "reparameterisation gradients with respect to mu and omega",
             isolated_from=_GRADIENT + ("elbo_mean_field",)),
        Task("step_size", "(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16)",
             "ADVI's adaptive step-size sequence"),
        Task("advi_mean_field",
             "(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None)",
             "the ADVI loop, mean-field", isolated_from=_GRADIENT + ("elbo_mean_field", "grad_elbo_mean_field",
                                                                    "step_size")),
        Task("elbo_full_rank", "(mu, L, eta, x, y)", "Monte Carlo ELBO of the full-rank Gaussian",
             isolated_from=_GRADIENT),
        Task("grad_elbo_full_rank", "(mu, L, eta, x, y)",
             "reparameterisation gradients with respect to mu and L",
             isolated_from=_GRADIENT + ("elbo_full_rank",)),
        Task("advi_full_rank",
             "(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None)",
             "the ADVI loop, full-rank", isolated_from=_GRADIENT + ("elbo_full_rank", "grad_elbo_full_rank",
                                                                   "step_size")),
    ],
)

# Registering the checks (each module adds its checks to ASSIGNMENT).
from . import checks_model, checks_elbo, checks_step, checks_loops  # noqa: E402,F401
