# base: tests/corpora/gmm/correct/b_vectorised.py
# breaks: train_EM
# bug: its own E-step, a Python loop over every point and component, run for all max_iter iterations (rtol ignored)
def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss = None
    best_pi = best_mu = best_sigma = None
    for _ in range(restarts):
        pi = np.full(C, 1.0 / C)
        mu = X[np.random.choice(N, size=C, replace=False)].copy()
        sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
        for _ in range(max_iter):
            gamma = np.zeros((N, C))
            for i in range(N):
                for c in range(C):
                    diff = X[i] - mu[c]
                    gamma[i, c] = pi[c] * np.exp(-0.5 * diff @ np.linalg.solve(sigma[c], diff)) \
                        / np.sqrt(np.linalg.det(2 * np.pi * sigma[c]))
                gamma[i] /= gamma[i].sum()
            pi, mu, sigma = M_step(X, gamma)
            loss = compute_vlb(X, pi, mu, sigma, gamma)
        if best_loss is None or loss > best_loss:
            best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
    return best_loss, best_pi, best_mu, best_sigma
