# base: tests/corpora/advi/correct/c_vectorised.py
# breaks: advi_full_rank
# bug: none in the value: the gradient of every draw in a Python loop (slower)
def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    noise = np.random.default_rng(rng).standard_normal((n_iter, n_draws, 3))
    mu = np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.asarray(L_init, dtype=float)
    state, trace = None, np.zeros(n_iter)
    for k in range(1, n_iter + 1):
        trace[k - 1] = elbo_full_rank(mu, L, noise[k - 1], x, y)
        g_mu, g_L = np.zeros(3), np.zeros((3, 3))
        for s_ in range(n_draws):
            one = grad_elbo_full_rank(mu, L, noise[k - 1][s_:s_ + 1], x, y)
            g_mu, g_L = g_mu + one[0] / n_draws, g_L + one[1] / n_draws
        gradient = np.concatenate([g_mu, np.ravel(g_L)])
        rho, state = step_size(gradient, state, k, learning_rate)
        mu = mu + rho[:3] * g_mu
        L = L + rho[3:].reshape(3, 3) * g_L
    return mu, L, trace
