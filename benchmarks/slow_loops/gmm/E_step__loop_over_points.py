# base: tests/corpora/gmm/correct/b_vectorised.py
# breaks: E_step
# bug: none in the value: a Python loop over every point and component (slow)
def E_step(X, pi, mu, sigma):
    N, d = X.shape
    C = len(pi)
    log_weights = np.zeros((N, C))
    for i in range(N):
        for c in range(C):
            diff = X[i] - mu[c]
            _, logdet = np.linalg.slogdet(sigma[c])
            log_weights[i, c] = (np.log(pi[c]) - 0.5 * (d * np.log(2 * np.pi) + logdet)
                                 - 0.5 * diff @ np.linalg.solve(sigma[c], diff))
    gamma = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    return gamma / gamma.sum(axis=1, keepdims=True)
