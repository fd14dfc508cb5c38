"""The graph example (examples/graph_search.py): its message passing against dense-matrix
computations, its graph, and both searches of its space."""

from __future__ import annotations

import graph_search as gs  # from examples/ (conftest.py)
import pytest
import torch
from torch import nn

import nasforge.nn as nasnn


def small_graph():
    """Five nodes: a triangle 0-1-2, an edge 2-3, and 4 alone (only its self-loop)."""
    pairs = [(0, 1), (1, 2), (0, 2), (2, 3)]
    source = [a for a, b in pairs] + [b for a, b in pairs]
    target = [b for a, b in pairs] + [a for a, b in pairs]
    graph = gs.Structure(torch.tensor([source, target]), 5)
    adjacency = torch.zeros(5, 5)
    adjacency[graph.target, graph.source] = 1.0  # row i: the nodes i hears from (itself too)
    return graph, adjacency


# -- message passing against dense matrices -------------------------------------------------------
def test_gcn_layer_is_the_normalised_adjacency_times_the_projected_features():
    graph, a_hat = small_graph()
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    projection = nn.Linear(3, 4, bias=False)
    layer = gs.GraphConv(projection, 1, gs.GcnAttention(graph), gs.Aggregation("sum", graph), graph)
    d = a_hat.sum(1).rsqrt().diag()
    expected = d @ a_hat @ d @ x @ projection.weight.t()
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_const_attention_aggregates_the_neighbourhood_with_sum_mean_or_max(how):
    graph, a_hat = small_graph()
    torch.manual_seed(1)
    x = torch.randn(5, 4)
    layer = gs.GraphConv(
        nn.Identity(), 2, gs.ConstAttention(graph), gs.Aggregation(how, graph), graph
    )
    if how == "sum":
        expected = a_hat @ x
    elif how == "mean":
        expected = (a_hat / a_hat.sum(1, keepdim=True)) @ x
    else:
        masked = torch.where(a_hat[:, :, None] > 0, x[None, :, :], -torch.inf)
        expected = masked.max(dim=1).values
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("kind", ["gat", "sym-gat", "cos", "linear", "generalized-linear"])
def test_attention_coefficients_sum_to_one_over_the_neighbours_of_each_node(kind):
    graph, _ = small_graph()
    torch.manual_seed(2)
    z = torch.randn(5, 2, 3)  # two heads of three channels
    coefficients = gs.attention(kind, graph, 6)(z)
    assert coefficients.shape == (graph.edges.shape[1], 2)
    assert bool((coefficients > 0).all())
    totals = torch.zeros(5, 2).index_add(0, graph.target, coefficients)
    torch.testing.assert_close(totals, torch.ones(5, 2))
    # the lone node 4 hears only itself
    alone = (graph.target == 4).nonzero().flatten()
    torch.testing.assert_close(coefficients[alone], torch.ones(1, 2))


def test_gat_layer_matches_a_masked_dense_softmax_per_head():
    graph, a_hat = small_graph()
    torch.manual_seed(3)
    x = torch.randn(5, 3)
    heads, width = 2, 4
    projection = nn.Linear(3, width, bias=False)
    attention = gs.GatAttention(graph, width)
    layer = gs.GraphConv(projection, heads, attention, gs.Aggregation("sum", graph), graph)
    z = x @ projection.weight.t()
    out = torch.zeros(5, width)
    for head in range(heads):
        channels = list(range(head, width, heads))  # channel c belongs to head c mod heads
        zh = z[:, channels]
        left, right = attention.vectors[0, channels], attention.vectors[1, channels]
        scores = nn.functional.leaky_relu((zh @ left)[:, None] + (zh @ right)[None, :], 0.2)
        alpha = torch.softmax(scores.masked_fill(a_hat == 0, -torch.inf), dim=1)
        out[:, channels] = alpha @ zh
    torch.testing.assert_close(layer(x), out)


def test_sym_gat_scores_are_symmetric_and_heads_average_in_the_output_layer():
    graph, _ = small_graph()
    torch.manual_seed(4)
    z = torch.randn(5, 3, 2)
    sym = gs.SymGatAttention(graph, 6)
    scores = sym.scores(z[graph.target], z[graph.source], z)
    reverse = {(int(s), int(t)): k for k, (s, t) in enumerate(graph.edges.t())}
    for k, (s, t) in enumerate(graph.edges.t()):
        torch.testing.assert_close(scores[k], scores[reverse[(int(t), int(s))]])
    x = torch.randn(5, 6)
    parts = (gs.ConstAttention(graph), gs.Aggregation("sum", graph), graph)
    concat = gs.GraphConv(nn.Identity(), 3, *parts)
    mean = gs.GraphConv(nn.Identity(), 3, *parts, concat=False)
    per_head = concat(x).view(5, 2, 3)  # channel c of head c mod 3
    torch.testing.assert_close(mean(x), per_head.mean(2))


def test_a_width_the_heads_do_not_divide_is_refused():
    graph, _ = small_graph()
    layer = gs.GraphConv(
        nn.Identity(), 4, gs.ConstAttention(graph), gs.Aggregation("sum", graph), graph
    )
    with pytest.raises(ValueError, match="not divisible by 4 heads"):
        layer(torch.randn(5, 6))
    with pytest.raises(ValueError, match="'sum', 'mean' or 'max'"):
        gs.Aggregation("median", graph)


# -- the graph ------------------------------------------------------------------------------------
def test_the_graph_is_a_seeded_homophilous_block_model_with_disjoint_splits():
    graph = gs.make_graph(nodes=300, seed=5)
    again = gs.make_graph(nodes=300, seed=5)
    assert torch.equal(graph.edges, again.edges) and torch.equal(graph.features, again.features)
    assert not torch.equal(graph.edges, gs.make_graph(nodes=300, seed=6).edges)
    source, target = graph.edges
    assert not bool((source == target).any())
    pairs = set(zip(source.tolist(), target.tolist(), strict=True))
    assert all((t, s) in pairs for s, t in pairs)  # undirected
    assert 0.7 < graph.homophily() < 0.9
    assert 4.0 < graph.edges.shape[1] / graph.num_nodes < 8.0  # mean degree about 6
    splits = torch.cat([graph.train, graph.valid, graph.test])
    assert sorted(splits.tolist()) == list(range(graph.num_nodes))


# -- the user's network ---------------------------------------------------------------------------
ARCH = {
    "hidden1": 16,
    "attention1": "gat",
    "aggregation1": "sum",
    "heads1": "2",
    "activation1": "elu",
    "attention2": "cos",
    "aggregation2": "max",
    "heads2": "4",
}


class HandWritten(nn.Module):
    """ARCH written out by hand with the example's layers."""

    def __init__(self, graph):
        super().__init__()
        self.register_buffer("features", graph.features, persistent=False)
        self.graph = s = gs.Structure(graph.edges, graph.num_nodes)
        features, classes = graph.features.shape[1], graph.num_classes
        self.layer1 = gs.GraphConv(
            nn.Linear(features, 16), 2, gs.GatAttention(s, 16), gs.Aggregation("sum", s), s
        )
        self.activation = nn.ELU()
        self.layer2 = gs.GraphConv(
            nn.Linear(16, 4 * classes),
            4,
            gs.CosAttention(s, 4 * classes),
            gs.Aggregation("max", s),
            s,
            concat=False,
        )
        self.dropout = nn.Dropout(0.5)

    def forward(self, nodes):
        h = self.layer1(self.dropout(self.features))
        return self.layer2(self.dropout(self.activation(h)))[nodes]


def test_the_network_of_one_architecture_is_the_hand_written_one():
    graph = gs.make_graph(nodes=60, seed=1)
    with nasnn.fixed(ARCH):
        built = gs.GraphNet(graph)
    hand = HandWritten(graph)
    hand.load_state_dict(built.state_dict())  # strict: the same layers, of the same shapes
    layers = [(name, type(m)) for name, m in built.named_modules() if name]
    assert layers == [(name, type(m)) for name, m in hand.named_modules() if name]
    built.eval(), hand.eval()
    nodes = torch.arange(graph.num_nodes)
    torch.testing.assert_close(built(nodes), hand(nodes))


# -- the space and its supernet -------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_space():
    from nasforge.spaces.module import ModuleSpace

    graph = gs.make_graph(nodes=60, seed=1)
    return graph, ModuleSpace(lambda: gs.GraphNet(graph), name="test_graph:small")


def test_the_space_has_auto_gnns_decisions_per_layer(small_space):
    _, space = small_space
    decisions = {d.name: d.options for d in space.decisions()}
    assert decisions["attention1"] == tuple(gs.ATTENTIONS) == decisions["attention2"]
    assert decisions["aggregation1"] == ("sum", "mean", "max") == decisions["aggregation2"]
    assert decisions["heads1"] == ("1", "2", "4") == decisions["heads2"]
    assert decisions["hidden1"] == (8, 16, 32)
    assert decisions["activation1"] == tuple(gs.ACTIVATIONS)
    arch = space.parse(",".join(f"{k}={v}" for k, v in ARCH.items()))
    assert space.build(arch).layer1.heads == 2


@pytest.mark.parametrize("activation", ["relu", "elu", "linear"])
def test_the_supernet_on_one_path_is_the_extracted_network_and_one_hot_mixing_agrees(
    small_space, activation
):
    graph, space = small_space
    values = {**ARCH, "activation1": activation}
    arch = space.parse(",".join(f"{k}={v}" for k, v in values.items()))
    torch.manual_seed(0)
    supernet = space.supernet().eval()
    path = supernet.path(arch)
    nodes = torch.arange(graph.num_nodes)
    with torch.no_grad():
        one_path = supernet(nodes, index=path)
        one_hot = [torch.zeros(1, len(g.options)) for g in supernet.groups]
        for w, row in zip(one_hot, path, strict=True):
            w[0, row[0]] = 1.0
        dense = supernet(nodes, weights=one_hot)
        extracted = supernet.extract(arch).eval()(nodes)
    torch.testing.assert_close(extracted, one_path)
    # the dense form runs the widest layers with the unchosen channels masked to zero; the
    # heads take channels c mod heads, so the masked ones fall evenly out of every head
    torch.testing.assert_close(dense, one_path, rtol=1e-4, atol=1e-5)


# -- the searches ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def searched():
    return gs.main(trials=4, oneshot_epochs=2, threads=1, verbose=False)


def test_black_box_search_records_its_trials_and_beats_the_network_that_ignores_the_edges(
    searched,
):
    from nasforge.trial import TrialState

    study = searched["regularized-evolution"]["study"]
    assert len(study.trials) == 4
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert all({"valid_acc", "test_acc", "params"} <= set(t.metrics) for t in study.trials)
    assert len({t.arch for t in study.trials}) > 1
    baseline = searched["features only"]["test_acc"]
    assert baseline < 65.0  # the features alone are too noisy...
    assert searched["regularized-evolution"]["test_acc"] > baseline + 15.0  # ...the edges help
    # both named by import path, so the study's record rebuilds them in another process
    record = study.record
    assert record.space == "graph_search:network"
    assert record.evaluator["fn"] == "graph_search:evaluate"


def test_darts_records_the_architecture_it_derives_each_epoch(searched):
    found = searched["darts"]
    study = found["study"]
    assert [t.metrics["epoch"] for t in study.trials] == [0.0, 1.0]
    assert str(study.trials[-1].arch) == found["arch"]
    assert all(0.0 <= t.metrics["valid_acc"] <= 100.0 for t in study.trials)
    assert all(t.arch.space == "graph_search:network" for t in study.trials)


def test_spos_trains_the_supernet_one_path_at_a_time_and_evolves_on_it():
    import nasforge

    space = nasforge.spaces.create("graph_search:network")
    evaluator = nasforge.evaluators.create("function", fn="graph_search:evaluate")
    result = nasforge.oneshot.search(
        "spos",
        gs.node_data(gs.default_graph()),
        space=space,
        params={"population": 6, "generations": 2, "top_k": 3},
        settings=nasforge.oneshot.SupernetSettings(batch_size=gs.ONESHOT_BATCH),
        epochs=2,
        evaluator=evaluator,
        device="cpu",
        threads=1,
    )
    assert len(result.study.trials) == 2
    assert result.arch == result.study.trials[-1].arch
    assert result.study.trials[-1].metrics["valid_acc"] > 100.0 / 3  # better than chance


def test_the_training_function_reports_validation_accuracy_as_it_trains():
    import nasforge
    from nasforge.reporting import TrialContext

    space = nasforge.spaces.create("graph_search:network")
    evaluator = nasforge.evaluators.create("function", fn="graph_search:evaluate")
    arch = space.parse(",".join(f"{k}={v}" for k, v in ARCH.items()))
    context = TrialContext(0, arch, metric="valid_acc")
    result = evaluator.evaluate(arch, context=context)
    assert sorted(context.reports) == list(range(10, gs.EPOCHS + 1, 10))
    assert context.reports[gs.EPOCHS]["valid_acc"] == result.metrics["valid_acc"]
