"""The supernet settings of a one-shot search: the space's preset, with what the user gives."""

from __future__ import annotations

import pytest

from nasforge import spaces
from nasforge.errors import UnsupportedOperationError
from nasforge.oneshot import SupernetSettings
from nasforge.runs.oneshot import supernet_settings


def test_nb201_default_is_the_search_preset_at_the_data_resolution() -> None:
    settings = supernet_settings("nb201")
    assert (settings.channels, settings.cells) == (16, 5)
    assert settings.resolution is None and settings.data_fraction == 1.0
    assert settings.options == {}
    assert supernet_settings("nb201", channels=8).channels == 8


def test_a_mobile_preset_shapes_the_supernet_and_its_images() -> None:
    space = spaces.create("mobilenet")
    reduced = supernet_settings("mobilenet", preset="reduced")
    wanted = space.presets()["reduced"]
    assert reduced.resolution == wanted["resolution"] == 32
    assert reduced.data_fraction == wanted["data_fraction"]
    assert reduced.options["stem_stride"] == 1 and reduced.options["width_mult"] == 0.25
    assert "epochs" not in reduced.options and "batch_size" not in reduced.options
    args = reduced.supernet_args(space)
    assert args["resolution"] == 32 and args["first_stride"] == 1
    # the search-time default is the 224x224 ImageNet network, fed 224x224 images
    standard = supernet_settings("mobilenet")
    assert standard.resolution == 224 and standard.supernet_args(space)["resolution"] == 224
    # a resolution given by the user is the images' side and the network's
    assert (
        supernet_settings("mobilenet", preset="reduced", resolution=64).supernet_args(space)[
            "resolution"
        ]
        == 64
    )


def test_an_unknown_preset_lists_the_space_presets() -> None:
    with pytest.raises(UnsupportedOperationError, match=r"no 'tiny' preset.*'reduced'"):
        SupernetSettings.preset("mobilenet", "tiny")
