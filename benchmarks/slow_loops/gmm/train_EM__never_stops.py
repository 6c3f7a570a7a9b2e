# base: tests/corpora/gmm/correct/b_vectorised.py
# breaks: train_EM
# bug: never stops: a while loop that ignores rtol and max_iter
def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss = None
    best_pi = best_mu = best_sigma = None
    for _ in range(restarts):
        pi = np.full(C, 1.0 / C)
        mu = X[np.random.choice(N, size=C, replace=False)].copy()
        sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
        previous = None
        while True:
            gamma = E_step(X, pi, mu, sigma)
            pi, mu, sigma = M_step(X, gamma)
            loss = compute_vlb(X, pi, mu, sigma, gamma)
            if previous is not None and loss < previous:   # a bound never decreases: never true
                break
            previous = loss
        if best_loss is None or loss > best_loss:
            best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
    return best_loss, best_pi, best_mu, best_sigma
