# base: tests/corpora/prankster/correct/b_window_sums.py
# breaks: calculate_log_probability
# bug: none in the value: Python loops over positions, images and every pixel (very slow)
import math


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    out = np.zeros((W - w + 1, K))
    for d in range(W - w + 1):
        for k in range(K):
            total = 0.0
            for i in range(H):
                for j in range(W):
                    model = F[i, j - d] if d <= j < d + w else B[i, j]
                    total += (X[i, j, k] - model) ** 2
            out[d, k] = -0.5 * H * W * math.log(2 * math.pi * s * s) - total / (2 * s * s)
    return out
