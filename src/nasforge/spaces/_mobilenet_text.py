"""The skeleton of the ``mobilenet`` space and its architecture text (private helpers of
:mod:`nasforge.spaces.mobilenet`, which documents both)."""

from __future__ import annotations

import re
from typing import Any

from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.spaces._mobilenet_presets import NETWORKS

STEM_WIDTHS: tuple[int, ...] = (16, 32, 40)
S0_WIDTHS: tuple[int, ...] = (16, 24)
#: Strides of stages 1..6.
STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
#: Width options of stages 1..6.
STAGE_WIDTHS: tuple[tuple[int, ...], ...] = (
    (24, 32),
    (32, 40, 56),
    (64, 80, 112),
    (96, 112, 128),
    (160, 192, 256),
    (320, 432),
)
#: Depth options of stages 1..6.
DEPTHS: tuple[tuple[int, ...], ...] = ((1, 2, 3, 4),) * 5 + ((0, 1),)
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANSIONS: tuple[float, ...] = (1, 3, 4, 6)
#: Squeeze-and-excitation options (the variants of :data:`nasforge.ops.mobile.SE_VARIANTS`).
SE_OPTIONS: tuple[str, ...] = ("none", "mnasnet", "mobilenetv3")
ACTIVATIONS: tuple[str, ...] = ("relu", "hswish")
HEADS: tuple[str, ...] = ("conv1280", "conv1728", "efficient")
#: Width of the layer after the last block in each head (conv, hidden linear).
HEAD_WIDTHS = {"conv1280": (1280, 0), "conv1728": (1728, 0), "efficient": (0, 1280)}
#: The efficient head's 1x1 convolution: this many times the last block's width.
EFFICIENT_EXPANSION = 6
#: The number of stages after stage 0.
N_STAGES = len(STAGE_STRIDES)
_BLOCK_RE = re.compile(r"^e([0-9]+(?:\.[0-9]+)?)k([0-9]+)((?:-[a-z0-9_]+)*)$")
EXAMPLE = NETWORKS["mobilenetv2"]


def max_depth(stage: int) -> int:
    return max(DEPTHS[stage - 1])


def format_block(kernel: int, expansion: float, se: str, act: str, skip: bool = False) -> str:
    text = f"e{expansion:g}k{kernel}"
    if se != "none":
        text += f"-se_{se}"
    if act != "relu":
        text += f"-{act}"
    return f"skip:{text}" if skip else text


def check_settings(
    num_classes: int,
    width_mult: float,
    resolution: int,
    stem_stride: int,
    first_stride: int,
    dropout: float,
) -> None:
    problems = []
    for label, value in (("num_classes", num_classes), ("resolution", resolution)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{label} must be a positive whole number, got {value!r}")
    if (
        isinstance(width_mult, bool)
        or not isinstance(width_mult, (int, float))
        or not (0 < width_mult <= 4)
    ):
        problems.append(f"width_mult must be a number in (0, 4], got {width_mult!r}")
    for label, value in (("stem_stride", stem_stride), ("first_stride", first_stride)):
        if value not in (1, 2) or isinstance(value, bool):
            problems.append(f"{label} must be 1 or 2, got {value!r}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        problems.append(f"dropout must be in [0, 1), got {dropout!r}")
    if problems:
        raise InvalidConfigError("Invalid mobilenet settings: " + "; ".join(problems) + ".")
    total = stem_stride * first_stride
    for stride in STAGE_STRIDES[1:]:
        total *= stride
    if resolution % total:
        works = ", ".join(str(total * k) for k in range(1, 9) if total * k >= 32) or str(total)
        raise InvalidConfigError(
            f"Resolution {resolution} is not a multiple of the network's total stride {total} "
            f"(stem stride {stem_stride}, stage strides {first_stride}, "
            f"{', '.join(map(str, STAGE_STRIDES[1:]))}); resolutions that work are multiples "
            f"of {total}, e.g. {works}."
        )


def show_option(option: Any) -> str:
    return f"{option:g}" if isinstance(option, float) else str(option)


def parse_block(token: str, where: str) -> dict[str, Any]:
    """Kernel, expansion, SE, activation and skip of one block token."""
    skip = token.startswith("skip:")
    body = token[len("skip:") :] if skip else token
    match = _BLOCK_RE.match(body)
    if match is None:
        raise InvalidArchitectureError(
            f"block {token!r} of {where} is malformed; write e<expansion>k<kernel> with "
            "optional -se_<variant> and -hswish, e.g. 'e6k3' or 'e3k5-se_mnasnet-hswish', "
            "and 'skip:' before a skipped block."
        )
    expansion_text, kernel, suffixes = match.groups()
    expansion = float(expansion_text)
    values: dict[str, Any] = {
        "kernel": int(kernel),
        "expansion": int(expansion) if expansion.is_integer() else expansion,
        "se": "none",
        "act": "relu",
        "skip": skip,
    }
    for suffix in filter(None, suffixes.split("-")):
        if suffix.startswith("se_"):
            values["se"] = suffix[3:]
        elif suffix in ACTIVATIONS:
            values["act"] = suffix
        else:
            raise InvalidArchitectureError(
                f"block {token!r} of {where} has an unknown part {suffix!r}; "
                f"use se_<variant> (variants: {', '.join(SE_OPTIONS[1:])}) or an activation "
                f"({', '.join(ACTIVATIONS)})."
            )
    return values


def parse_values(text: str) -> dict[str, Any]:
    """The decision values written in ``text`` (checked against the options later)."""
    compact = re.sub(r"\s+", "", text)
    parts = compact.split(";")
    names = ["stem", *(f"s{i}" for i in range(N_STAGES + 1)), "head"]
    keys = [part.split("=", 1)[0] for part in parts]
    if keys != names:
        raise InvalidArchitectureError(
            f"expected the parts {', '.join(names)} in that order, separated by ';', found "
            f"{', '.join(map(repr, keys))}. Example: {EXAMPLE!r}."
        )
    values: dict[str, Any] = {}
    bodies: dict[str, str] = {}
    for part in parts:
        key, _, body = part.partition("=")
        bodies[key] = body
    for part in ("stem", "head"):
        pieces = bodies[part].split("-")
        if len(pieces) != 2:
            raise InvalidArchitectureError(
                f"{part} must be written {part}=<{'width' if part == 'stem' else 'kind'}>-"
                f"<activation>, e.g. {'stem=32-relu' if part == 'stem' else 'head=conv1280-relu'}"
                f"; got {part}={bodies[part]!r}."
            )
        first, values[f"{part}_act"] = pieces
        values["stem_width" if part == "stem" else "head"] = (
            parse_integer(first, "the stem's width") if part == "stem" else first
        )
    for stage in range(N_STAGES + 1):
        where = f"stage s{stage}"
        width_text, sep, blocks_text = bodies[f"s{stage}"].partition(":")
        if not sep:
            raise InvalidArchitectureError(
                f"{where} must be written s{stage}=<width>:<blocks>, got "
                f"s{stage}={bodies[f's{stage}']!r}."
            )
        values[f"s{stage}_width"] = parse_integer(width_text, f"the width of {where}")
        active_text, _, rest_text = blocks_text.partition("/")
        active = [t for t in active_text.split(",") if t] if active_text else []
        rest = [t for t in rest_text.split(",") if t] if rest_text else []
        if stage == 0:
            if len(active) != 1 or rest:
                raise InvalidArchitectureError(
                    f"{where} has exactly one block, got {blocks_text!r}."
                )
            block = parse_block(active[0], where)
            if block["expansion"] != 1 or block["skip"]:
                raise InvalidArchitectureError(
                    f"the block of {where} has expansion 1 and cannot be skipped "
                    f"(write e1k<kernel>), got {active[0]!r}."
                )
            for field in ("kernel", "se", "act"):
                values[f"s0_{field}"] = block[field]
            continue
        most = max_depth(stage)
        if len(active) + len(rest) > most:
            raise InvalidArchitectureError(
                f"{where} holds at most {most} block(s), got {len(active) + len(rest)} in "
                f"{blocks_text!r}."
            )
        values[f"s{stage}_depth"] = len(active)
        for b, token in enumerate(active + rest + ["e1k3"] * (most - len(active) - len(rest))):
            block = parse_block(token, where)
            if block["skip"] and b == 0:
                raise InvalidArchitectureError(
                    f"the first block of {where} changes the width and stride and cannot be "
                    f"skipped, got {token!r}."
                )
            for field in ("kernel", "expansion", "se", "act"):
                values[f"s{stage}b{b}_{field}"] = block[field]
            if b > 0:
                values[f"s{stage}b{b}_skip"] = block["skip"]
    return values


def parse_integer(text: str, what: str) -> int:
    if not text.isdigit():
        raise InvalidArchitectureError(f"{what} must be a whole number, got {text!r}.")
    return int(text)


def drawing_blocks(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks of the drawing of the architecture with these decision values: the stem,
    the block of stage 0, every block within its stage's depth (a skipped one marked) and
    the head."""
    from nasforge.spaces._drawing import block

    def fields(prefix: str) -> dict[str, Any]:
        return {
            "kernel": values[f"{prefix}_kernel"],
            "expand": values.get(f"{prefix}_expansion", 1),
            "se": values[f"{prefix}_se"],
            "act": values[f"{prefix}_act"],
        }

    stem = {"width": values["stem_width"], "act": values["stem_act"]}
    blocks = [block("stem", stem, group="stem")]
    first = {"width": values["s0_width"], **fields("s0")}
    blocks.append(block("stage 0 · layer 0", first, group="s0"))
    for stage in range(1, N_STAGES + 1):
        for b in range(values[f"s{stage}_depth"]):
            prefix = f"s{stage}b{b}"
            choices = {"width": values[f"s{stage}_width"], **fields(prefix)}
            skipped = bool(values.get(f"{prefix}_skip", False))
            blocks.append(
                block(f"stage {stage} · layer {b}", choices, group=f"s{stage}", skipped=skipped)
            )
    head = {"head": values["head"], "act": values["head_act"]}
    return [*blocks, block("head", head, group="head")]
