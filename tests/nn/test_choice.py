"""nasforge.nn choices: fixed forms equal hand-written modules, and the weight-sharing forms
mix their candidates as DARTS (dense), GDAS (one path with weights), SPOS (one path) and
PC-DARTS (partial channels) need."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import nasforge.nn as nnf
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnsupportedOperationError
from nasforge.nn._trace import tracing


def _candidates() -> dict[str, nn.Module]:
    return {
        "conv": nn.Conv2d(4, 4, 3, padding=1),
        "pool": nn.MaxPool2d(3, 1, 1),
        "skip": nn.Identity(),
    }


def test_fixed_layer_choice_returns_the_chosen_candidate() -> None:
    ops = _candidates()
    with nnf.fixed({"op": "pool"}):
        chosen = nnf.LayerChoice(ops, label="op")
    assert chosen is ops["pool"]
    with nnf.fixed({"op": 2}):
        chosen = nnf.LayerChoice([nn.ReLU(), nn.Tanh(), nn.GELU()], label="op")
    assert isinstance(chosen, nn.GELU)


def test_fixed_value_repeat_and_input_choice() -> None:
    with nnf.fixed({"w": 16, "depth": 3, "inp": 1}):
        width = nnf.ValueChoice([8, 16], label="w")
        blocks = nnf.Repeat(lambda i: nn.Linear(width, width), (1, 3), label="depth")
        pick = nnf.InputChoice(3, label="inp")
    assert width == 16 and type(width) is int
    assert isinstance(blocks, nn.Sequential) and len(blocks) == 3
    assert all(isinstance(b, nn.Linear) and b.in_features == 16 for b in blocks)
    xs = [torch.full((2,), float(i)) for i in range(3)]
    assert torch.equal(pick(xs), xs[1])


def test_layer_choice_dense_is_the_weighted_sum_of_candidates() -> None:
    torch.manual_seed(0)
    choice = nnf.LayerChoice(_candidates(), label="op")
    x = torch.randn(2, 4, 6, 6)
    w = torch.tensor([0.2, 0.5, 0.3])
    choice.site.set(weights=w)
    expected = sum(w[i] * op(x) for i, op in enumerate(choice.candidates))
    assert torch.allclose(choice(x), expected, atol=1e-6)


class _Scaled(nn.Module):
    """A candidate that takes a second argument (as message passing takes a graph)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor, mask: torch.Tensor, *, shift: float = 0.0) -> torch.Tensor:
        return self.factor * x * mask + shift


def test_layer_choice_passes_further_arguments_to_its_candidates() -> None:
    choice = nnf.LayerChoice([_Scaled(1.0), _Scaled(3.0)], label="op")
    x, mask = torch.randn(2, 5), (torch.arange(5) % 2).float()
    choice.site.set(weights=torch.tensor([0.25, 0.75]))
    expected = 0.25 * (x * mask + 1) + 0.75 * (3 * x * mask + 1)
    assert torch.allclose(choice(x, mask, shift=1.0), expected, atol=1e-6)
    choice.site.set(index=1)
    assert torch.equal(choice(x, mask, shift=1.0), 3.0 * x * mask + 1.0)


def test_layer_choice_one_path_with_and_without_weights() -> None:
    torch.manual_seed(0)
    choice = nnf.LayerChoice(_candidates(), label="op")
    x = torch.randn(2, 4, 6, 6)
    choice.site.set(index=0)
    assert torch.equal(choice(x), choice.candidates[0](x))
    logits = torch.zeros(3, requires_grad=True)
    probs = logits.softmax(-1)
    hard = torch.zeros(3).scatter_(0, torch.tensor([0]), 1.0) - probs.detach() + probs
    choice.site.set(weights=hard, index=0)
    out = choice(x)
    assert torch.allclose(out, choice.candidates[0](x), atol=1e-6)
    out.sum().backward()
    assert logits.grad is not None and bool((logits.grad != 0).all())


def test_repeat_dense_mixes_the_outputs_after_each_depth() -> None:
    torch.manual_seed(0)
    repeat = nnf.Repeat(lambda i: nn.Linear(4, 4), (1, 3), label="depth")
    assert isinstance(repeat, nnf.Repeat) and len(repeat.blocks) == 3
    x = torch.randn(5, 4)
    outs, h = [], x
    for block in repeat.blocks:
        h = block(h)
        outs.append(h)
    w = torch.tensor([0.1, 0.6, 0.3])
    assert repeat.site is not None
    repeat.site.set(weights=w)
    assert torch.allclose(repeat(x), sum(w[i] * outs[i] for i in range(3)), atol=1e-6)
    repeat.site.set(index=1)
    assert torch.allclose(repeat(x), outs[1])


def test_repeat_with_a_value_choice_depth_and_zero_blocks() -> None:
    depth = nnf.ValueChoice([0, 2], label="d")
    repeat = nnf.Repeat(lambda i: nn.Linear(3, 3), depth)
    x = torch.randn(2, 3)
    depth.site.set(index=0)
    assert torch.equal(repeat(x), x)
    depth.site.set(weights=torch.tensor([0.5, 0.5]))
    expected = 0.5 * x + 0.5 * repeat.blocks[1](repeat.blocks[0](x))
    assert torch.allclose(repeat(x), expected, atol=1e-6)


def test_repeat_of_shape_changing_blocks_cannot_be_mixed_densely() -> None:
    repeat = nnf.Repeat(lambda i: nn.Linear(3 + i, 4 + i), (1, 2), label="grow")
    assert repeat.site is not None
    repeat.site.set(weights=torch.tensor([0.5, 0.5]))
    with pytest.raises(UnsupportedOperationError, match="grow"):
        repeat(torch.randn(2, 3))


def test_input_choice_mixes_the_chosen_sets() -> None:
    xs = [torch.randn(2, 3) for _ in range(3)]
    single = nnf.InputChoice(3, label="one")
    single.site.set(weights=torch.tensor([0.2, 0.3, 0.5]))
    assert torch.allclose(single(xs), 0.2 * xs[0] + 0.3 * xs[1] + 0.5 * xs[2])
    pair = nnf.InputChoice(3, 2, reduction="mean", label="two")
    assert pair.site.options == ("0+1", "0+2", "1+2")
    pair.site.set(weights=torch.tensor([0.0, 1.0, 0.0]))
    assert torch.allclose(pair(xs), (xs[0] + xs[2]) / 2)
    with nnf.fixed({"two": [0, 2]}):
        fixed_pair = nnf.InputChoice(3, 2, reduction="mean", label="two")
    assert torch.allclose(fixed_pair(xs), (xs[0] + xs[2]) / 2)


def test_labels_are_numbered_per_build_and_scoped_inside_repeats() -> None:
    with tracing() as trace:
        nnf.LayerChoice([nn.ReLU(), nn.Tanh()])
        nnf.Repeat(lambda i: nnf.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 2))
        nnf.LayerChoice([nn.ReLU(), nn.Tanh()])
        nnf.ValueChoice([1, 2])
    assert list(trace.sites) == [
        "layerchoice_0",
        "repeat_0",
        "repeat_0.0.layerchoice_0",
        "repeat_0.1.layerchoice_0",
        "layerchoice_1",
        "valuechoice_0",
    ]


def test_a_label_used_again_is_one_decision() -> None:
    with tracing() as trace:
        a = nnf.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
        b = nnf.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
    assert a.site is b.site and list(trace.sites) == ["act"]


def test_a_label_reused_with_other_options_is_refused() -> None:
    with tracing(), pytest.raises(InvalidConfigError, match=r"'w'.*\[8, 16\].*\[8, 32\]"):
        nnf.ValueChoice([8, 16], label="w")
        nnf.ValueChoice([8, 32], label="w")


def test_fixed_refuses_unknown_and_missing_labels_and_bad_values() -> None:
    with pytest.raises(InvalidConfigError, match="widht"), nnf.fixed({"width": 8, "widht": 8}):
        nnf.ValueChoice([8, 16], label="width")
    with pytest.raises(InvalidConfigError, match="'kernel'"), nnf.fixed({"width": 8}):
        nnf.ValueChoice([8, 16], label="width")
        nnf.ValueChoice([3, 5], label="kernel")
    with pytest.raises(InvalidArchitectureError, match="12"), nnf.fixed({"width": 12}):
        nnf.ValueChoice([8, 16], label="width")


def test_fixed_tolerates_the_labels_of_blocks_a_repeat_leaves_out() -> None:
    values = {"depth": 1, "depth.0.layerchoice_0": 0, "depth.1.layerchoice_0": 1}
    with nnf.fixed(values):
        net = nnf.Repeat(lambda i: nnf.LayerChoice([nn.ReLU(), nn.Tanh()]), (1, 2), label="depth")
    assert len(net) == 1 and isinstance(net[0], nn.ReLU)


def test_bad_choices_are_refused() -> None:
    with pytest.raises(InvalidConfigError, match="at least one candidate"):
        nnf.LayerChoice([])
    with pytest.raises(InvalidConfigError, match=r"nn.Module"):
        nnf.LayerChoice([nn.ReLU(), "tanh"])
    with pytest.raises(InvalidConfigError, match="label"):
        nnf.ValueChoice([1, 2], label="a,b")
    with pytest.raises(InvalidConfigError, match="differ"):
        nnf.ValueChoice([1, "1"])
    with pytest.raises(InvalidConfigError, match="n_chosen"):
        nnf.InputChoice(2, 3)
    with pytest.raises(InvalidConfigError, match="depth"):
        nnf.Repeat(nn.ReLU(), -1)
    with pytest.raises(InvalidConfigError, match="not one number"):
        int(nnf.ValueChoice([2, 3]))


def test_a_choice_without_its_option_set_says_how_to_run_it() -> None:
    choice = nnf.LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
    with pytest.raises(InvalidConfigError, match=r"act.*fixed"):
        choice(torch.zeros(1))


def test_partial_channels_mix_a_share_and_shuffle() -> None:
    choice = nnf.LayerChoice({"max": nn.MaxPool2d(3, 1, 1), "skip": nn.Identity()}, label="op")
    choice.partial = 2
    x = torch.randn(2, 4, 5, 5)
    w = torch.tensor([0.25, 0.75])
    choice.site.set(weights=w)
    head = 0.25 * nn.functional.max_pool2d(x[:, :2], 3, 1, 1) + 0.75 * x[:, :2]
    expected = torch.stack([head, x[:, 2:]], dim=2).reshape(2, 4, 5, 5)
    assert torch.allclose(choice(x), expected, atol=1e-6)
    down = nnf.LayerChoice([nn.MaxPool2d(2), nn.AvgPool2d(2)], label="down")
    down.partial = 2
    down.site.set(index=1)
    assert down(x[:, :, :4, :4]).shape == (2, 4, 2, 2)


def test_partial_channels_on_candidates_tied_to_the_width_are_refused() -> None:
    choice = nnf.LayerChoice({"conv": nn.Conv2d(4, 4, 1), "skip": nn.Identity()}, label="mix")
    choice.partial = 2
    choice.site.set(weights=torch.tensor([0.5, 0.5]))
    with pytest.raises(UnsupportedOperationError, match=r"'mix'.*partial channels"):
        choice(torch.randn(1, 4, 3, 3))
    wide = nnf.LayerChoice({"up": nn.Conv2d(2, 4, 1), "up2": nn.Conv2d(2, 4, 3, padding=1)})
    wide.partial = 2
    wide.site.set(index=0)
    with pytest.raises(UnsupportedOperationError, match="channels"):
        wide(torch.randn(1, 4, 3, 3))


def test_a_copied_block_keeps_its_choices_shared() -> None:
    with tracing() as trace:
        block = nn.Sequential(nn.Linear(2, 2), nnf.LayerChoice([nn.ReLU(), nn.Tanh()], label="a"))
        repeat = nnf.Repeat(block, 2)
    assert list(trace.sites) == ["a"]
    assert repeat.blocks[0][1].site is repeat.blocks[1][1].site is block[1].site
    clone = copy.deepcopy(repeat)
    assert clone.blocks[0][1].site is clone.blocks[1][1].site


def test_fixed_model_of_value_choices_equals_the_hand_written_one_from_the_same_seed() -> None:
    def build() -> nn.Module:
        width = nnf.ValueChoice([4, 8], label="width")
        return nn.Sequential(
            nnf.Conv2d(3, width, nnf.ValueChoice([3, 5], label="k"), padding=1),
            nnf.Repeat(lambda i: nnf.Conv2d(width, width, 3, padding=1), (1, 3), label="d"),
        )

    torch.manual_seed(0)
    with nnf.fixed({"width": 8, "k": 3, "d": 2}):
        fixed = build()
    torch.manual_seed(0)
    hand = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)),
    )
    x = torch.randn(1, 3, 6, 6)
    assert str(fixed) == str(hand) and torch.equal(fixed(x), hand(x))
