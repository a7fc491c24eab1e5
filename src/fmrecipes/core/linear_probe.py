"""The standard linear probe of frozen features: multinomial logistic regression on standardised features,
fitted full batch by L-BFGS with a small L2 penalty (deterministic), scored by top-1 accuracy on held-out
features beside the majority class of the training labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 n_classes: int, l2: float = 1e-3, steps: int = 100) -> dict[str, float]:
    """``{"accuracy", "majority"}``: the probe's test accuracy and that of always answering the most frequent
    training label, both in [0, 1]."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    x, xt = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, train_y) + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        accuracy = float(((xt @ w + b).argmax(1) == test_y).float().mean())
    majority = int(torch.bincount(train_y, minlength=n_classes).argmax())
    return {"accuracy": accuracy, "majority": float((test_y == majority).float().mean())}
