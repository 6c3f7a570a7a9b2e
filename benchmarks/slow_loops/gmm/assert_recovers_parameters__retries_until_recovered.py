# base: tests/corpora/gmm/correct/b_vectorised.py
# breaks: assert_recovers_parameters
# bug: retries with fresh data until the parameters are recovered: never returns on a broken train_EM
def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    rng = np.random.default_rng(0)
    while True:
        labels = rng.choice(len(pi), size=n_points, p=pi)
        X = np.array([rng.multivariate_normal(mu[c], sigma[c]) for c in labels])
        _, pi_hat, mu_hat, _ = train_EM(X, len(pi))
        rows, cols = linear_sum_assignment(((mu[:, None, :] - mu_hat[None, :, :]) ** 2).sum(axis=2))
        if np.all(np.abs(mu_hat[cols] - mu[rows]) < tol * (1 + np.abs(mu[rows]))):
            return
