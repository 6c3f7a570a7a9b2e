# base: tests/corpora/hard_em/correct/b_vectorised.py
# breaks: e_step_spherical
# bug: none in the value: a Python loop over every point and component (slow)
import math


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    N, D = X.shape
    C = len(pi)
    gamma = np.zeros((N, C))
    for i in range(N):
        logw = []
        for c in range(C):
            dist = sum((X[i, j] - mu[c, j]) ** 2 for j in range(D))
            logw.append((math.log(pi[c]) if pi[c] > 0 else -math.inf) - dist / (2 * s2)
                        - 0.5 * D * math.log(2 * math.pi * s2))
        if hard_EM:
            gamma[i, int(np.argmax(logw))] = 1.0
            continue
        top = max(logw)
        weights = [math.exp(v - top) for v in logw]
        gamma[i] = np.array(weights) / sum(weights)
    return gamma
