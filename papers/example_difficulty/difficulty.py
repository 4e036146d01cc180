"""Example difficulty scores (the families compared by Kwok et al. 2024, "Dataset Difficulty and the
Role of Inductive Bias"; definitions checked against github.com/devinkwok/nn_example_difficulty,
re-implemented here).

From logits [..., N, C] and labels [N] (higher = harder unless noted):
    el2n        ||softmax(z) - onehot(y)||_2                            (Paul et al. 2021)
    margin      p_y - max_{c != y} p_c            (higher = easier)     (Pleiss et al. 2020)
    confidence  p_y                               (higher = easier)
    entropy     -sum_c p_c log p_c
    loss        cross-entropy -log p_y
From 0/1 correctness over evaluations [T, N] (training dynamics; Toneva et al. 2019):
    forgetting_events   number of 1 -> 0 transitions (a start at 0, untrained, is assumed)
    first_learned       first evaluation at which the example is correct (T if never)
    learned_for_good    first evaluation after which it stays correct (T if wrong at the end);
                        Baldock et al.'s "iteration learned"
From gradients:
    grand_scores        ||d loss / d theta||_2 per example (GraNd; Paul et al. 2021)
    input_gradients     d z_y / d x per example; VoG = mean over pixels of the variance over
                        checkpoints of the channel-averaged input gradient (Agarwal et al. 2022)
From representations:
    prediction_depth    earliest layer from which a k-NN probe on every later layer agrees with
                        the target (the model's prediction by default); L = no layer (Baldock et al. 2021)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Scores where a larger value means an easier example; `difficulty_sign` flips them.
EASY_IS_HIGH = ("margin", "confidence", "accuracy")


def difficulty_sign(name: str) -> float:
    """+1 if larger `name` means harder, -1 if it means easier (so sign * score orders by difficulty)."""
    return -1.0 if name in EASY_IS_HIGH else 1.0


# ---- logits ---------------------------------------------------------------------------------------

def pointwise_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores of logits [..., N, C] against labels [N]; each [..., N] float64."""
    if logits.shape[-2] != labels.shape[-1]:
        raise ValueError(f"logits have {logits.shape[-2]} examples, labels {labels.shape[-1]}")
    z = logits.double()
    logp = F.log_softmax(z, dim=-1)
    p = logp.exp()
    y = labels.long().broadcast_to(z.shape[:-1]).unsqueeze(-1)
    p_y = p.gather(-1, y).squeeze(-1)
    onehot = F.one_hot(labels.long(), z.shape[-1]).to(z.dtype)
    others = p.masked_fill(onehot.bool(), float("-inf"))
    return {
        "el2n": (p - onehot).norm(dim=-1),
        "margin": p_y - others.max(dim=-1).values,
        "confidence": p_y,
        "entropy": -(torch.xlogy(p, p)).sum(-1),
        "loss": -logp.gather(-1, y).squeeze(-1),
        "accuracy": (z.argmax(-1) == labels).double(),
    }


# ---- training dynamics ----------------------------------------------------------------------------

def _as_bool(correct) -> torch.Tensor:
    c = torch.as_tensor(correct)
    if c.ndim != 2:
        raise ValueError(f"correct must be [T, N] (evaluations x examples); got shape {tuple(c.shape)}")
    return c.bool()


def forgetting_events(correct) -> torch.Tensor:
    """Number of correct -> wrong transitions between consecutive evaluations; [T, N] -> [N]."""
    c = _as_bool(correct)
    return (c[:-1] & ~c[1:]).sum(0)


def first_learned(correct) -> torch.Tensor:
    """Index of the first evaluation at which each example is correct; T if never. [T, N] -> [N]."""
    c = _as_bool(correct)
    hit = torch.cat([c, torch.ones(1, c.shape[1], dtype=torch.bool)])   # sentinel row at T
    return hit.int().argmax(0)


def learned_for_good(correct) -> torch.Tensor:
    """First evaluation index from which each example is correct at every later evaluation;
    T if it is wrong at the last one. [T, N] -> [N]."""
    c = _as_bool(correct)
    t = c.shape[0]
    wrong = ~c
    # last wrong index (or -1 if never wrong) + 1
    idx = torch.arange(t).unsqueeze(1).expand_as(wrong)
    last_wrong = torch.where(wrong, idx, torch.full_like(idx, -1)).max(0).values
    return last_wrong + 1


# ---- gradients ------------------------------------------------------------------------------------

def grand_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Per-example norm of the gradient of the cross-entropy w.r.t. all parameters: [N] float64.

    Computed with torch.func (vmap over per-example grads), in eval mode (batch norm uses its
    running statistics, so examples do not interact)."""
    from torch.func import functional_call, grad, vmap

    was_training = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_one(p, xi, yi):
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),)).logits    # (1, C)
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
    norms = []
    try:
        for s in range(0, len(x), batch_size):
            g = per_example(params, x[s:s + batch_size], y[s:s + batch_size])
            sq = sum(v.double().pow(2).flatten(1).sum(1) for v in g.values())
            norms.append(sq.sqrt())
    finally:
        model.train(was_training)
    return torch.cat(norms)


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """d logit_y / d x for each example, in eval mode: [N, C, H, W] (same shape as x)."""
    was_training = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    out = []
    try:
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size].detach().clone().requires_grad_(True)
            logits = model(xb).logits                                    # (B, C)
            # Examples are independent in eval mode, so the gradient of the sum is per-example.
            (g,) = torch.autograd.grad(logits.gather(1, y[s:s + batch_size, None]).sum(), xb)
            out.append(g.detach())
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)
    return torch.cat(out)


class OnlineVoG:
    """Variance of gradients accumulated over checkpoints without storing them (Welford).

    add(grads [N, C, H, W]) once per checkpoint; get() -> [N]: mean over pixels of the variance
    (over checkpoints, unbiased) of the channel-averaged input gradient.
    """

    def __init__(self):
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, grads: torch.Tensor) -> None:
        g = grads.double().mean(dim=1) if grads.ndim == 4 else grads.double()
        g = g.flatten(1)
        self.n += 1
        if self.mean is None:
            self.mean, self.m2 = g.clone(), torch.zeros_like(g)
            return
        delta = g - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (g - self.mean)

    def get(self) -> torch.Tensor:
        if self.n < 2:
            raise ValueError(f"VoG needs at least 2 checkpoints, got {self.n}")
        return (self.m2 / (self.n - 1)).mean(dim=1)


# ---- representations ------------------------------------------------------------------------------

@torch.no_grad()
def layer_representations(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> list[torch.Tensor]:
    """`model.intermediates(x)` in eval mode, flattened per example, on the CPU: list of [N, D_l]
    float32 (logits last). x may live anywhere; chunks go to the model's device."""
    if not hasattr(model, "intermediates"):
        raise ValueError(f"{type(model).__name__} has no intermediates(x); use a model from shared.models.vision")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        chunks = [[r.flatten(1).float().cpu() for r in model.intermediates(x[s:s + batch_size].to(device))]
                  for s in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return [torch.cat([c[l] for c in chunks]) for l in range(len(chunks[0]))]


def _vote(votes: np.ndarray, n_classes: int, leave_one_out: bool) -> np.ndarray:
    """Majority class of each row of neighbour labels votes [N, k] (nearest first): [N]. Ties: the
    class whose nearest member is closest (leave-one-out), else the smallest label (scikit-learn's
    KNeighborsClassifier, which the authors' code uses)."""
    n, k = votes.shape
    counts = np.zeros((n, n_classes))
    np.add.at(counts, (np.repeat(np.arange(n), k), votes.ravel()), 1.0)
    if leave_one_out:   # tie-break: tiny bonus decreasing with neighbour rank
        bonus = np.zeros_like(counts)
        for r in range(k - 1, -1, -1):
            bonus[np.arange(n), votes[:, r]] = (k - r) * 1e-3 / k
        counts += bonus
    return counts.argmax(1)


def knn_loo_predictions(features: np.ndarray, labels: np.ndarray, k: int, leave_one_out: bool = True) -> np.ndarray:
    """k-NN majority vote (Euclidean) of every point of features [N, D] among labelled points
    labels [N]: [N] labels. leave_one_out: among the others (ties to the class whose nearest member is
    closest); False: the point is one of its own k neighbours, as scikit-learn predicting on its fit
    set (ties to the smallest label)."""
    from sklearn.neighbors import NearestNeighbors

    extra = 1 if leave_one_out else 0
    nn_idx = NearestNeighbors(n_neighbors=k + extra).fit(features).kneighbors(features, return_distance=False)
    votes = labels[nn_idx[:, extra:]]                         # [N, k], nearest first
    return _vote(votes, int(labels.max()) + 1, leave_one_out)


@torch.no_grad()
def knn_predictions_torch(features: torch.Tensor, labels: torch.Tensor, k: int, leave_one_out: bool = True,
                          chunk: int = 1024) -> torch.Tensor:
    """knn_loo_predictions on the features' device (exact, chunked squared distances, no [N, N]
    matrix held): features [N, D], labels [N] -> [N] int64 on the CPU."""
    x = features.float()
    sq = x.pow(2).sum(1)                                                   # [N]
    nearest = []
    for s in range(0, len(x), chunk):
        q = x[s:s + chunk]
        d = sq[s:s + chunk, None] - 2.0 * q @ x.T + sq[None, :]            # [B, N]
        if leave_one_out:
            d[torch.arange(len(q)), torch.arange(s, s + len(q))] = float("inf")
        else:   # the point itself first, as an exact search returns it
            d[torch.arange(len(q)), torch.arange(s, s + len(q))] = float("-inf")
        nearest.append(d.topk(k, dim=1, largest=False).indices.cpu())     # [B, k], nearest first
    votes = labels.cpu()[torch.cat(nearest)].numpy()
    return torch.from_numpy(_vote(votes, int(labels.max()) + 1, leave_one_out))


def prediction_depth(representations: Sequence[torch.Tensor], targets: torch.Tensor, k: int = 30,
                     leave_one_out: bool = True) -> torch.Tensor:
    """Prediction depth of each example: the smallest layer index l such that the k-NN probe (fit on
    the same examples' layer representations with their `targets`; leave-one-out or not) agrees with
    the target at every layer >= l; L (the number of layers) if it disagrees at the last one.

    representations: list of L tensors [N, D_l], input side first. targets [N]: Baldock et al.
    use the model's final predictions, the authors' code the labels. Returns [N] int64 in [0, L].
    """
    t = targets.cpu().numpy()
    agree = np.stack([knn_loo_predictions(r.cpu().numpy(), t, k, leave_one_out) == t
                      for r in representations])                                            # [L, N]
    return learned_for_good(torch.from_numpy(agree))


@torch.no_grad()
def streamed_prediction_depth(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, k: int = 30,
                              leave_one_out: bool = True, batch_size: int = 1024) -> torch.Tensor:
    """prediction_depth over `model.intermediates` of x [N, C, H, W], holding one layer's
    representations [N, D_l] at a time on the model's device (one pass over x per layer; the k-NN
    runs there too): for the full training set, where every layer at once does not fit."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        n_layers = len(model.intermediates(x[:1].to(device)))
        agree = []
        for layer in range(n_layers):
            rep = torch.cat([model.intermediates(x[s:s + batch_size].to(device))[layer].flatten(1).float()
                             for s in range(0, len(x), batch_size)])                       # [N, D_l]
            agree.append(knn_predictions_torch(rep, targets.to(device), k, leave_one_out) == targets.cpu())
            del rep
    finally:
        model.train(was_training)
    return learned_for_good(torch.stack(agree))


# ---- every score of one run -----------------------------------------------------------------------

SCORE_NAMES = ("el2n", "margin", "confidence", "entropy", "loss", "forgetting", "first_learned",
               "grand", "vog", "prediction_depth")


def later_epoch_column(score: str, epoch: int) -> str:
    """The column of `score` ("grand" or "el2n") taken at a later epoch than its first: "grand_ep20".
    The first epoch's column keeps the plain name, so a run that takes it once has SCORE_NAMES only."""
    return f"{score}_ep{epoch}"


def score_names(grand_epochs: Sequence[int] = (), el2n_epochs: Sequence[int] = ()) -> tuple[str, ...]:
    """Every score column of a run: SCORE_NAMES, then one column per later GraNd epoch and per later
    EL2N epoch (the epochs in the order they are taken)."""
    return (SCORE_NAMES + tuple(later_epoch_column("grand", e) for e in grand_epochs[1:])
            + tuple(later_epoch_column("el2n", e) for e in el2n_epochs[1:]))


def _by_epoch(value):
    """A value taken at one epoch (or None) as {epoch: value}, like one taken at several."""
    if isinstance(value, Mapping):
        return dict(value)
    return {} if value is None else {None: value}


def run_scores(logits: torch.Tensor, labels: torch.Tensor,
               grand: torch.Tensor | Mapping[int, torch.Tensor] | None = None,
               vog: torch.Tensor | None = None, representations: Sequence[torch.Tensor] | None = None,
               pd_k: int = 30, el2n_at: int | Mapping[int, int] | None = None,
               prediction_depths: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Every score of one run from its records: logits [T, N, C] of T evaluations during training,
    labels [N], GraNd [N] and VoG [N] if computed, and the final model's layer representations
    (or prediction_depths [N] computed already, e.g. by streamed_prediction_depth).

    Logit scores (el2n, margin, confidence, entropy, loss) are averaged over the T evaluations,
    as the nn_example_difficulty scripts average them over checkpoints (cf. the area under the
    margin of Pleiss et al. 2020); el2n_at: EL2N of that one evaluation instead (Paul et al.'s
    early-training EL2N). Training-dynamics scores use the T evaluations' correctness.
    Prediction depth from representations uses the final evaluation's predictions as targets.

    Taken at several epochs: grand as {epoch: [N]}, el2n_at as {epoch: evaluation index}. The first
    epoch fills "grand" / "el2n", each later one its own column (later_epoch_column: "grand_ep20")."""
    point = pointwise_scores(logits, labels)
    out = {name: point[name].mean(0).numpy() for name in ("el2n", "margin", "confidence", "entropy", "loss")}
    for i, (epoch, at) in enumerate(_by_epoch(el2n_at).items()):
        out["el2n" if i == 0 else later_epoch_column("el2n", epoch)] = point["el2n"][at].numpy()
    correct = logits.argmax(-1) == labels
    out["forgetting"] = forgetting_events(correct).numpy().astype(float)
    out["first_learned"] = first_learned(correct).numpy().astype(float)
    for i, (epoch, g) in enumerate(_by_epoch(grand).items()):
        out["grand" if i == 0 else later_epoch_column("grand", epoch)] = np.asarray(g, dtype=float)
    if vog is not None:
        out["vog"] = np.asarray(vog, dtype=float)
    if prediction_depths is not None:
        out["prediction_depth"] = np.asarray(prediction_depths, dtype=float)
    elif representations is not None:
        targets = logits[-1].argmax(-1)
        out["prediction_depth"] = prediction_depth(representations, targets, k=pd_k).numpy().astype(float)
    return out
