# base: tests/corpora/advi/correct/c_vectorised.py
# breaks: advi_mean_field
# bug: never stops: iterates until the ELBO estimate stops changing, which a noisy estimate never does
def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace, s_mu, s_omega, k = [], None, None, 0
    while len(trace) < 2 or trace[-1] != trace[-2]:
        k += 1
        eta = rng.standard_normal((n_draws, 3))
        trace.append(elbo_mean_field(mu, omega, eta, x, y))
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        rho_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        rho_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu, omega = mu + rho_mu * g_mu, omega + rho_omega * g_omega
    return mu, omega, np.array(trace[-n_iter:])
