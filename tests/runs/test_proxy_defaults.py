"""Which proxies ``nasforge proxies`` runs on a space when none are named."""

from __future__ import annotations

from nasforge import proxies, spaces
from nasforge.runs.proxies import _applicable


def test_transformer_spaces_get_the_transformer_proxies_and_not_zen():
    chosen = _applicable(spaces.create("vit-cifar"))
    assert {"dss", "synaptic_diversity", "synaptic_saliency", "decoder_params"} <= set(chosen)
    assert "zen" not in chosen  # no global average pooling in a vision transformer
    assert {"synflow", "snip", "params"} <= set(chosen)


def test_cell_spaces_keep_every_proxy_of_any_network():
    chosen = _applicable(spaces.create("nb201"))
    assert "zen" in chosen and "synflow" in chosen
    assert not {"dss", "decoder_params"} & set(chosen)
    assert set(chosen) == {n for n in proxies.names() if not proxies.get(n).requires}
