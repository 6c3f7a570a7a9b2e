# base: tests/corpora/hard_em/correct/b_vectorised.py
# breaks: run_EM
# bug: never stops: a while loop that ignores tolerance and max_iter
def run_EM(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50, hard_EM=False):
    H, W, K = X.shape
    mean_image = np.mean(X, axis=2)
    if F is None:
        F = np.lib.stride_tricks.sliding_window_view(mean_image, w, axis=1).mean(axis=1)
    if B is None:
        B = mean_image
    if a is None:
        a = np.full(W - w + 1, 1.0 / (W - w + 1))
    if s is None:
        s = float(np.sqrt(np.mean((X - mean_image[:, :, None]) ** 2)))
    q = run_e_step(X, F, B, s, a, hard_EM)
    LL = [calculate_lower_bound(X, F, B, s, a, q, hard_EM)]
    while True:
        F, B, s, a = run_m_step(X, q, w, hard_EM)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM)
        if LL[-1] < LL[-2] - 1e300:          # never true
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)
