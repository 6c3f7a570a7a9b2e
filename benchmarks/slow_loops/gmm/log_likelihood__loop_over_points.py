# base: tests/corpora/gmm/correct/b_vectorised.py
# breaks: log_likelihood
# bug: none in the value: a Python loop over every point (slow)
def log_likelihood(X, pi, mu, sigma):
    total = 0.0
    for i in range(X.shape[0]):
        total += float(logsumexp(np.log(pi) + log_gaussians(X[i:i + 1], mu, sigma)[0]))
    return total
