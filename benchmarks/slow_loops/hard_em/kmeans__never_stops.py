# base: tests/corpora/hard_em/correct/b_vectorised.py
# breaks: kmeans
# bug: never stops: compares the new labels with themselves, and ignores max_iter
def kmeans(X, mu, max_iter=100):
    centres = mu.copy().astype(float)
    while True:
        labels = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        for c in range(len(centres)):
            if np.any(labels == c):
                centres[c] = X[labels == c].mean(axis=0)
        if not (labels == labels).all():
            break
    return centres, labels
