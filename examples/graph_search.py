"""Search a graph neural network layer by layer, as Auto-GNN does, on a node-classification graph.

Each of the two message-passing layers chooses its attention function, its aggregation, its
number of heads, its width and its activation: the per-layer space of GraphNAS (Gao et al.,
"GraphNAS: Graph Neural Architecture Search with Reinforcement Learning", IJCAI 2020,
arXiv:1904.09981, its search space of attention functions, aggregators, activations, heads and
hidden units) that Auto-GNN searches (Zhou et al., "Auto-GNN: Neural Architecture Search of
Graph Neural Networks", arXiv:1909.03184, Frontiers in Big Data 2022). The network is plain
PyTorch user code with ``nasforge.nn`` choices in it; nasforge turns it into a search space,
searches it with regularized evolution (Auto-GNN's controller is a reinforcement learner; any
black-box strategy fits here) and with a one-shot method (DARTS or SPOS on the weight-sharing
supernet nasforge builds from the same code).

The graph is a contextual stochastic block model made on the spot (no download): nodes of a
class link mostly to each other, and each node's features are its class centre plus noise loud
enough that a network ignoring the edges is right only about half the time.

    python examples/graph_search.py

Where this differs from the papers, for a CPU run of a minute or two:

* a layer's width (``hidden``) is its output width, shared by its heads (each head gets
  ``width / heads`` channels, channel ``c`` to head ``c mod heads``), where GraphNAS gives each
  head ``hidden`` channels and concatenates them; so the next layer's input is one value choice;
* fewer options: widths {8, 16, 32}, heads {1, 2, 4}, GraphNAS's eight activations, and no
  ``mlp`` aggregator (Auto-GNN's aggregations are sum, mean and max); the output layer gives
  the logits (its heads averaged), so only the hidden layer's width and activation are searched;
* each candidate network trains for 50 full-graph epochs with Adam (learning rate 0.01, weight
  decay 5e-4, dropout 0.5): GraphNAS's optimiser and weight decay with a doubled learning rate
  for fewer epochs, the same for every network.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import nasforge.nn as nasnn

# -- the graph: a contextual stochastic block model -------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A node-classification graph.

    Attributes:
        features: ``(nodes, features)`` float node features.
        edges: ``(2, edges)`` long tensor, row 0 the source and row 1 the target of each
            directed edge; every undirected edge appears in both directions, no self-loops.
        labels: ``(nodes,)`` class of each node.
        train, valid, test: Node indices of the three splits (disjoint).
        num_classes: Number of classes.
    """

    features: torch.Tensor
    edges: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    def homophily(self) -> float:
        """Share of edges joining two nodes of the same class."""
        source, target = self.edges
        return float((self.labels[source] == self.labels[target]).float().mean())


def make_graph(
    nodes: int = 600,
    classes: int = 3,
    features: int = 16,
    degree: float = 6.0,
    homophily: float = 0.8,
    signal: float = 0.6,
    splits: tuple[float, float] = (0.4, 0.2),
    seed: int = 0,
) -> Graph:
    """A contextual stochastic block model (a planted partition with node features).

    Nodes get classes in turn; two nodes of the same class are linked with probability
    ``p_in`` and of different classes with ``p_out``, chosen so that a node has ``degree``
    neighbours on average, a share ``homophily`` of them in its own class. A node's features are
    its class centre (a random direction of length ``signal``) plus standard normal noise.

    Args:
        nodes, classes, features: Sizes.
        degree: Expected number of neighbours of a node.
        homophily: Expected share of a node's neighbours in its own class.
        signal: Distance of each class centre from the origin, in noise standard deviations.
        splits: Shares of the nodes for training and validation; the rest is the test set.
        seed: Seed of every draw.
    """
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily!r}.")
    if nodes < 2 * classes:
        raise ValueError(f"nodes must be at least 2 * classes = {2 * classes}, got {nodes}.")
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.arange(nodes) % classes)[torch.randperm(nodes, generator=generator)]
    same = labels[:, None] == labels[None, :]
    per_class = nodes / classes
    p_in = min(1.0, degree * homophily / (per_class - 1))
    p_out = min(1.0, degree * (1.0 - homophily) / (nodes - per_class))
    probability = torch.where(same, p_in, p_out)
    upper = torch.triu(torch.rand(nodes, nodes, generator=generator) < probability, diagonal=1)
    source, target = upper.nonzero(as_tuple=True)
    edges = torch.stack([torch.cat([source, target]), torch.cat([target, source])])
    centres = torch.randn(classes, features, generator=generator)
    centres = signal * centres / centres.norm(dim=1, keepdim=True)
    x = centres[labels] + torch.randn(nodes, features, generator=generator)
    order = torch.randperm(nodes, generator=generator)
    n_train, n_valid = round(splits[0] * nodes), round(splits[1] * nodes)
    return Graph(
        features=x,
        edges=edges,
        labels=labels,
        train=order[:n_train].sort().values,
        valid=order[n_train : n_train + n_valid].sort().values,
        test=order[n_train + n_valid :].sort().values,
        num_classes=classes,
    )


# -- message passing in plain PyTorch ---------------------------------------------------------


def add_self_loops(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """``edges`` with an edge from every node to itself appended."""
    loops = torch.arange(nodes, device=edges.device)
    return torch.cat([edges, torch.stack([loops, loops])], dim=1)


def gcn_coefficients(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """``1 / sqrt(d_i d_j)`` for each edge ``j -> i`` of ``edges`` (self-loops included), with
    ``d`` the in-degree: the entries of Kipf and Welling's ``D^-1/2 (A + I) D^-1/2``."""
    degree = torch.zeros(nodes, device=edges.device).index_add_(
        0, edges[1], torch.ones(edges.shape[1], device=edges.device)
    )
    scale = degree.clamp(min=1.0).rsqrt()
    return scale[edges[0]] * scale[edges[1]]


def edge_softmax(scores: torch.Tensor, target: torch.Tensor, nodes: int) -> torch.Tensor:
    """Softmax of ``scores`` (``(edges, heads)``) over the edges that enter the same node."""
    heads = scores.shape[1]
    index = target[:, None].expand(-1, heads)
    largest = torch.full((nodes, heads), -torch.inf, device=scores.device, dtype=scores.dtype)
    largest = largest.scatter_reduce(0, index, scores, reduce="amax", include_self=True)
    exp = (scores - largest[target]).exp()
    total = torch.zeros(nodes, heads, device=scores.device, dtype=scores.dtype)
    total = total.index_add(0, target, exp)
    return exp / total[target]


class Structure(nn.Module):
    """The edges messages pass along: ``edges`` with a self-loop per node, held as buffers
    that move with the network (``.to(device)``) but stay out of its state dict. Every
    message-passing module of a network holds the same one, so that each is called with one
    tensor (as a choice's candidates are).

    Args:
        edges: ``(2, edges)``: row 0 the source ``j``, row 1 the target ``i`` of each edge.
        nodes: Number of nodes.
    """

    def __init__(self, edges: torch.Tensor, nodes: int) -> None:
        super().__init__()
        self.nodes = nodes
        self.edges: torch.Tensor
        self.gcn: torch.Tensor
        self.register_buffer("edges", add_self_loops(edges, nodes), persistent=False)
        self.register_buffer("gcn", gcn_coefficients(self.edges, nodes), persistent=False)

    @property
    def source(self) -> torch.Tensor:
        return self.edges[0]

    @property
    def target(self) -> torch.Tensor:
        return self.edges[1]

    def extra_repr(self) -> str:
        return f"nodes={self.nodes}, edges={self.edges.shape[1]}"


# Attention functions: GraphNAS's seven correlation coefficients. Each maps projected node
# features split in heads, ``z`` of shape ``(nodes, heads, channels)``, to one coefficient per
# edge ``j -> i`` and head; the learned ones are normalised over the edges that enter a node
# (softmax), ``const`` and ``gcn`` are not. Their parameters are sized for ``width`` (all
# heads) and read per head.


class Attention(nn.Module):
    """Base of the learned attention functions: ``self.vectors`` holds one weight per channel
    and vector (GraphNAS's ``a_l``, ``a_r``), read per head."""

    def __init__(self, graph: Structure, width: int, vectors: int = 2) -> None:
        super().__init__()
        self.graph = graph
        self.vectors = nn.Parameter(torch.empty(vectors, width))
        nn.init.xavier_uniform_(self.vectors)

    def per_head(self, z: torch.Tensor, which: int) -> torch.Tensor:
        """Vector ``which`` laid out like ``z``'s heads: ``(heads, channels)``, channel ``c``
        of the layer belonging to head ``c mod heads``."""
        heads, channels = z.shape[1], z.shape[2]
        return self.vectors[which, : heads * channels].view(channels, heads).t()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zi, zj = z[self.graph.target], z[self.graph.source]
        return edge_softmax(self.scores(zi, zj, z), self.graph.target, z.shape[0])

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``(edges, heads)`` from the target's and the source's features."""
        raise NotImplementedError  # each attention function below defines it

    def gat(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        left, right = self.per_head(z, 0), self.per_head(z, 1)
        return F.leaky_relu((zi * left).sum(-1) + (zj * right).sum(-1), 0.2)


class ConstAttention(nn.Module):
    """``const``: every neighbour weighs 1."""

    def __init__(self, graph: Structure) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.new_ones(self.graph.edges.shape[1], z.shape[1])


class GcnAttention(nn.Module):
    """``gcn``: ``1 / sqrt(d_i d_j)``, the symmetric normalisation of GCN (Kipf and Welling,
    ICLR 2017)."""

    def __init__(self, graph: Structure) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.graph.gcn.to(z.dtype)[:, None].expand(-1, z.shape[1])


class GatAttention(Attention):
    """``gat``: ``LeakyReLU(a_l . z_i + a_r . z_j)`` (Velickovic et al., ICLR 2018)."""

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.gat(zi, zj, z)


class SymGatAttention(Attention):
    """``sym-gat``: the ``gat`` score of the edge plus that of its reverse."""

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.gat(zi, zj, z) + self.gat(zj, zi, z)


class CosAttention(Attention):
    """``cos``: ``<a_l * z_i, a_r * z_j>``."""

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (zi * self.per_head(z, 0) * zj * self.per_head(z, 1)).sum(-1)


class LinearAttention(Attention):
    """``linear``: ``tanh(a . z_j)``, a score of the neighbour alone."""

    def __init__(self, graph: Structure, width: int) -> None:
        super().__init__(graph, width, vectors=1)

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh((zj * self.per_head(z, 0)).sum(-1))


class GeneralizedLinearAttention(Attention):
    """``generalized-linear``: ``w . tanh(a_l * z_i + a_r * z_j)``."""

    def __init__(self, graph: Structure, width: int) -> None:
        super().__init__(graph, width, vectors=3)

    def scores(self, zi: torch.Tensor, zj: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        left, right, outer = (self.per_head(z, k) for k in range(3))
        return (torch.tanh(zi * left + zj * right) * outer).sum(-1)


ATTENTIONS: dict[str, type[nn.Module]] = {
    "const": ConstAttention,
    "gcn": GcnAttention,
    "gat": GatAttention,
    "sym-gat": SymGatAttention,
    "cos": CosAttention,
    "linear": LinearAttention,
    "generalized-linear": GeneralizedLinearAttention,
}


def attention(kind: str, graph: Structure, width: int) -> nn.Module:
    """The attention function ``kind`` for a layer of ``width`` channels on ``graph``."""
    factory = ATTENTIONS[kind]
    return factory(graph, width) if issubclass(factory, Attention) else factory(graph)


AGGREGATIONS = ("sum", "mean", "max")


class Aggregation(nn.Module):
    """Combine the messages entering each node: ``sum``, ``mean`` or ``max``.

    ``forward(messages)``: ``messages`` of shape ``(edges, ...)``, one per edge of ``graph``;
    returns ``(nodes, ...)``. Every node has a message (its self-loop).
    """

    def __init__(self, how: str, graph: Structure) -> None:
        super().__init__()
        if how not in AGGREGATIONS:
            raise ValueError(f"aggregation must be 'sum', 'mean' or 'max', got {how!r}.")
        self.how = how
        self.graph = graph

    def extra_repr(self) -> str:
        return self.how

    def forward(self, messages: torch.Tensor) -> torch.Tensor:
        target, nodes = self.graph.target, self.graph.nodes
        shape = (nodes, *messages.shape[1:])
        trailing = [1] * (messages.dim() - 1)
        if self.how == "max":
            index = target.view(-1, *trailing).expand_as(messages)
            empty = messages.new_zeros(shape)
            return empty.scatter_reduce(0, index, messages, reduce="amax", include_self=False)
        total = messages.new_zeros(shape).index_add(0, target, messages)
        if self.how == "mean":
            count = messages.new_zeros(nodes).index_add(0, target, messages.new_ones(len(target)))
            total = total / count.clamp(min=1.0).view(-1, *trailing)
        return total


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "linear": nn.Identity,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "relu6": nn.ReLU6,
    "elu": nn.ELU,
}


class GraphConv(nn.Module):
    """One message-passing layer of GraphNAS: ``h_i' = AGG_{j in N(i) + i} e_ij^k W h_j``.

    The node features are projected (``projection``, ``in -> width``), split in ``heads`` heads
    of ``width / heads`` channels; the attention function gives each edge ``j -> i`` and head a
    coefficient, the messages ``e_ij * z_j`` are aggregated at ``i``, and the heads are
    concatenated (``concat``; output ``width``) or averaged (output ``width / heads``).

    Args:
        projection: The ``in -> width`` linear map (a ``torch.nn.Linear``, or a value-aware one).
        heads: Number of heads (divides the width).
        attention: Attention function: ``(nodes, heads, channels)`` to ``(edges, heads)``.
        aggregation: Messages ``(edges, heads, channels)`` to ``(nodes, heads, channels)``.
        graph: The edges (the attention and aggregation pass along the same ones).
        concat: Concatenate the heads (hidden layers) or average them (output layer).
    """

    def __init__(
        self,
        projection: nn.Module,
        heads: int,
        attention: nn.Module,
        aggregation: nn.Module,
        graph: Structure,
        concat: bool = True,
    ) -> None:
        super().__init__()
        self.projection = projection
        self.heads = heads
        self.attention = attention
        self.aggregation = aggregation
        self.graph = graph
        self.concat = concat

    def extra_repr(self) -> str:
        return f"heads={self.heads}, concat={self.concat}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: features ``(nodes, in)`` of every node of the graph."""
        nodes = x.shape[0]
        z = self.projection(x)  # (nodes, width); channel c belongs to head c mod heads
        if z.shape[1] % self.heads:
            raise ValueError(f"width {z.shape[1]} is not divisible by {self.heads} heads.")
        z = z.view(nodes, -1, self.heads).transpose(1, 2)  # (nodes, heads, channels)
        coefficients = self.attention(z)  # (edges, heads)
        messages = coefficients.unsqueeze(-1) * z[self.graph.source]
        out: torch.Tensor = self.aggregation(messages)  # (nodes, heads, channels)
        if self.concat:
            return out.transpose(1, 2).reshape(nodes, -1)
        return out.mean(1)


# -- the user's network, with the choices in it -----------------------------------------------

HIDDEN = (8, 16, 32)
HEADS = (1, 2, 4)


def largest(value: Any) -> int:
    """The widest option of a width: ``value`` itself inside ``nasnn.fixed()`` (where a value
    choice is its chosen value), else the largest of its options (the supernet's weights)."""
    return value if isinstance(value, int) else max(value.options)


def searched_layer(
    index: int, graph: Structure, in_width: Any, out_width: Any, concat: bool
) -> nn.Module:
    """Layer ``index``: a choice of heads, each candidate a :class:`GraphConv` whose attention
    and aggregation are choices too (the same labels in every candidate: one decision each)."""

    def candidate(heads: int) -> GraphConv:
        width = out_width if concat else heads * out_width
        return GraphConv(
            nasnn.Linear(in_width, width),
            heads,
            nasnn.LayerChoice(
                {kind: attention(kind, graph, largest(width)) for kind in ATTENTIONS},
                label=f"attention{index}",
            ),
            nasnn.LayerChoice(
                {how: Aggregation(how, graph) for how in AGGREGATIONS},
                label=f"aggregation{index}",
            ),
            graph,
            concat=concat,
        )

    return nasnn.LayerChoice({str(h): candidate(h) for h in HEADS}, label=f"heads{index}")


class GraphNet(nn.Module):
    """Two message-passing layers whose attention, aggregation, heads, width and activation
    are searched; the graph is held as buffers and ``forward`` takes node indices.

    Args:
        graph: The graph the network classifies the nodes of.
        dropout: Dropout before each layer (GraphNAS's 0.6 is for Cora's 1,433 features).
    """

    def __init__(self, graph: Graph, dropout: float = 0.5) -> None:
        super().__init__()
        self.features: torch.Tensor
        self.register_buffer("features", graph.features, persistent=False)
        self.graph = Structure(graph.edges, graph.num_nodes)
        width = nasnn.ValueChoice(list(HIDDEN), label="hidden1")
        self.layer1 = searched_layer(1, self.graph, graph.features.shape[1], width, concat=True)
        self.activation = nasnn.LayerChoice(
            {name: make() for name, make in ACTIVATIONS.items()}, label="activation1"
        )
        self.layer2 = searched_layer(2, self.graph, width, graph.num_classes, concat=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        """Logits of the nodes ``nodes`` (a long tensor of indices)."""
        h = self.layer1(self.dropout(self.features))
        logits: torch.Tensor = self.layer2(self.dropout(self.activation(h)))
        return logits[nodes]


class FeaturesOnly(nn.Module):
    """The baseline that ignores the edges: a two-layer perceptron on each node's features."""

    def __init__(self, graph: Graph, hidden: int = 32, dropout: float = 0.5) -> None:
        super().__init__()
        self.features: torch.Tensor
        self.register_buffer("features", graph.features, persistent=False)
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(graph.features.shape[1], hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, graph.num_classes),
        )

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(self.features[nodes])
        return logits


# -- training: the user's own loop ------------------------------------------------------------


def accuracy(model: nn.Module, graph: Graph, nodes: torch.Tensor) -> float:
    """Accuracy in percent of ``model`` on ``nodes`` (evaluation mode)."""
    model.eval()
    with torch.no_grad():
        predicted = model(nodes).argmax(1)
    return 100.0 * float((predicted == graph.labels[nodes]).float().mean())


def train_nodes(
    model: nn.Module,
    graph: Graph,
    *,
    epochs: int = 50,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    seed: int = 0,
    context: Any = None,
    report_every: int = 10,
) -> dict[str, float]:
    """Train ``model`` on the training nodes, the full graph each step (Adam, weight decay as
    GraphNAS), and measure it. With a :class:`nasforge.reporting.TrialContext` the validation
    accuracy is reported every ``report_every`` epochs, so that the study's stopping rule can
    end a poor trial (``TrialStopped`` is raised out of this function then).

    Returns:
        ``valid_acc``, ``test_acc`` and ``train_acc`` in percent, ``params`` (weights).
    """
    generator = torch.Generator().manual_seed(seed)  # dropout draws from torch's generator:
    with torch.random.fork_rng(devices=[]):  # seed it here and leave it as it was after
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        for epoch in range(1, epochs + 1):
            model.train()
            optimizer.zero_grad()
            loss = F.cross_entropy(model(graph.train), graph.labels[graph.train])
            loss.backward()
            optimizer.step()
            if context is not None and (epoch % report_every == 0 or epoch == epochs):
                # raises nasforge.reporting.TrialStopped when the study's rule says stop
                values = {"valid_acc": accuracy(model, graph, graph.valid)}
                context.report(values, step=epoch, stop=True)
    return {
        "valid_acc": accuracy(model, graph, graph.valid),
        "test_acc": accuracy(model, graph, graph.test),
        "train_acc": accuracy(model, graph, graph.train),
        "params": float(sum(p.numel() for p in model.parameters())),
    }


# -- the searches -------------------------------------------------------------------------------

#: Training epochs of each network the searches evaluate.
EPOCHS = 50


@functools.cache
def default_graph() -> Graph:
    """The graph the example searches on (:func:`make_graph`'s defaults)."""
    return make_graph()


def network() -> GraphNet:
    """``GraphNet`` on the default graph: the zero-argument factory that is the search space
    ``"graph_search:network"`` (importable wherever ``examples/`` is on the path)."""
    return GraphNet(default_graph())


def evaluate(model: nn.Module, context: Any = None) -> dict[str, float]:
    """The user's training function as the ``function`` evaluator calls it, by its import
    path ``"graph_search:evaluate"`` (so a study records it and worker processes rebuild it):
    train for :data:`EPOCHS` epochs on the default graph, reporting as it goes."""
    return train_nodes(model, default_graph(), epochs=EPOCHS, context=context)


def node_data(graph: Graph) -> Any:
    """The graph as a dataset for the one-shot methods: items ``(node index, label)`` (the
    network holds the graph itself); the one-shot search splits the training nodes in halves,
    one for the weights and one for the architecture."""
    from nasforge.train.user_data import UserData

    def split(nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nodes, graph.labels[nodes]

    return UserData(
        split(graph.train), split(graph.valid), split(graph.test), num_classes=graph.num_classes
    )


#: The one-shot methods' settings here: batches of 40 training nodes (each step runs the whole
#: graph, so the batch only sets how many nodes the loss sees), and DARTS's architecture
#: learning rate ten times its paper's 3e-4, since this search takes tens of steps, not
#: thousands; SPOS's evolution on the supernet is shortened the same way.
ONESHOT_BATCH = 40
ONESHOT_PARAMS: dict[str, dict[str, Any]] = {
    "darts": {"arch_lr": 3e-3},
    "spos": {"population": 20, "generations": 5, "top_k": 5},
}


def main(
    *,
    trials: int = 24,
    strategy: str = "regularized-evolution",
    oneshot: str = "darts",
    oneshot_epochs: int = 15,
    seed: int = 0,
    threads: int | None = 1,
    verbose: bool = True,
) -> dict[str, Any]:
    """Search ``GraphNet`` on the default graph with ``strategy`` for ``trials`` networks and
    with the one-shot method ``oneshot`` for ``oneshot_epochs`` epochs (on ``threads`` CPU
    threads: one is fastest for a graph this small; ``None`` takes all), train the baseline
    that ignores the edges, and print (``verbose``) and return what each found: the
    architecture, its validation and test accuracy, the trials recorded (with the studies)
    and the seconds."""
    import nasforge
    from nasforge.train.trainer import num_threads

    graph = default_graph()
    # the model and the training function by import path: the study records both
    space = nasforge.spaces.create("graph_search:network")
    evaluator = nasforge.evaluators.create(
        "function", fn="graph_search:evaluate", metrics={"valid_acc": "max", "test_acc": "max"}
    )
    out: dict[str, Any] = {}

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        baseline = FeaturesOnly(graph)
    out["features only"] = {
        **train_nodes(baseline, graph, epochs=EPOCHS, seed=seed),
        "seconds": time.perf_counter() - start,
    }

    start = time.perf_counter()
    # regularized evolution's population and tournament scaled to the budget (the paper's
    # 100 and 25 are for thousands of trials)
    evolution = {"population_size": max(2, trials // 3), "tournament_size": max(2, trials // 8)}
    study = nasforge.create_study(
        space=space,
        strategy=strategy,
        strategy_params=evolution if strategy == "regularized-evolution" else None,
        seed=seed,
        evaluator=evaluator,
    )
    with num_threads(threads):
        study.optimize(evaluator, n_trials=trials)
    best = study.best_trial
    out[strategy] = {
        "arch": str(best.arch),
        "valid_acc": best.metrics["valid_acc"],
        "test_acc": best.metrics["test_acc"],
        "trials": len(study.trials),
        "seconds": time.perf_counter() - start,
        "study": study,
    }

    start = time.perf_counter()
    result = nasforge.oneshot.search(
        oneshot,
        node_data(graph),
        space=space,
        params=ONESHOT_PARAMS.get(oneshot),
        settings=nasforge.oneshot.SupernetSettings(batch_size=ONESHOT_BATCH),
        epochs=oneshot_epochs,
        seed=seed,
        evaluator=evaluator,
        device="cpu",
        threads=threads,
    )
    last = result.study.trials[-1]
    out[oneshot] = {
        "arch": str(result.arch),
        "valid_acc": last.metrics["valid_acc"],
        "test_acc": last.metrics["test_acc"],
        "trials": len(result.study.trials),
        "seconds": time.perf_counter() - start,
        "study": result.study,
    }

    if verbose:
        print(
            f"graph: {graph.num_nodes} nodes, {graph.edges.shape[1] // 2} edges, "
            f"homophily {graph.homophily():.2f}, {graph.num_classes} classes, "
            f"{len(graph.train)}/{len(graph.valid)}/{len(graph.test)} train/valid/test nodes"
        )
        for name, found in out.items():
            line = (
                f"{name:>22}: valid {found['valid_acc']:5.1f}  test {found['test_acc']:5.1f}  "
                f"{found['seconds']:6.1f} s"
            )
            if "arch" in found:
                line += f"  {found['trials']} trials, found {found['arch']}"
            print(line)
    return out


if __name__ == "__main__":
    main()
