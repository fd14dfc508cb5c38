"""The elastic layers of :class:`nasforge.ops.elastic.ElasticMobileNet`: a batch norm that
normalises the first channels it is given, and an inverted-residual block with an elastic
kernel and an elastic expansion.

Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One Network and
Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.2:

* **Elastic kernel**: the block holds the largest depthwise kernel (7x7); a smaller kernel is
  the centre of the next larger one times a learnable *kernel transformation matrix* shared
  by all channels (a 25x25 matrix for 7->5 on the flattened 5x5 centre, then a 9x9 matrix for
  5->3 on the centre of the *transformed* 5x5 kernel), identity at initialisation (the
  authors' ``DynamicSeparableConv2d``, ``KERNEL_TRANSFORM_MODE = 1``).
* **Elastic expansion**: the block holds the widest expansion; a smaller one keeps the first
  channels of the expanded width (:func:`~nasforge.ops.mobile.expanded_channels` of the
  block's input width, the width the ``mobilenet`` space builds) in the expansion
  convolution, its batch norm, the depthwise convolution and its batch norm, the
  squeeze-and-excitation (MobileNetV3's variant, squeezed to ``make_divisible(mid / 4)`` of
  the *active* width, first rows and columns of both convolutions and biases) and the input
  channels of the projection. :meth:`ElasticMBConv.reorder_channels` sorts the channels by
  importance first (the authors' ``re_organize_middle_weights``).
* **Dynamic batch norm**: the first channels' weight, bias and running statistics; in
  training mode the sliced running statistics are updated in place (the authors'
  ``DynamicBatchNorm2d``), with :class:`torch.nn.BatchNorm2d`'s momentum rule (``None``: a
  cumulative average, what batch-norm recalibration uses).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.ops.mobile import MBConv, SqueezeExcite, expanded_channels, make_divisible

__all__ = ["DynamicBatchNorm2d", "ElasticMBConv"]


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """A batch norm of ``num_features`` channels that normalises an input of fewer channels
    with its first channels' parameters and statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
        use_batch = self.training or self.running_mean is None
        running_mean = None if self.running_mean is None else self.running_mean[:channels]
        running_var = None if self.running_var is None else self.running_var[:channels]
        return F.batch_norm(
            x,
            running_mean if not self.training or self.track_running_stats else None,
            running_var if not self.training or self.track_running_stats else None,
            self.weight[:channels],
            self.bias[:channels],
            use_batch,
            factor,
            self.eps,
        )

    def copy_to(self, target: nn.BatchNorm2d) -> None:
        """Copy the first ``target.num_features`` channels' parameters and statistics."""
        n = target.num_features
        with torch.no_grad():
            target.weight.copy_(self.weight[:n])
            target.bias.copy_(self.bias[:n])
            assert self.running_mean is not None and self.running_var is not None
            assert target.running_mean is not None and target.running_var is not None
            target.running_mean.copy_(self.running_mean[:n])
            target.running_var.copy_(self.running_var[:n])
            if self.num_batches_tracked is not None and target.num_batches_tracked is not None:
                target.num_batches_tracked.copy_(self.num_batches_tracked)

    def permute_(self, order: torch.Tensor) -> None:
        """Reorder the channels: channel ``i`` becomes the former channel ``order[i]``."""
        with torch.no_grad():
            for tensor in (self.weight, self.bias, self.running_mean, self.running_var):
                if tensor is not None:
                    tensor.copy_(tensor[order])


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None
    return conv.bias


def _part(module: nn.Module | None, index: int) -> nn.Module:
    assert isinstance(module, nn.Sequential)
    part: nn.Module = module[index]
    return part


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "hswish":
        return F.hardswish(x)
    if name == "relu6":
        return F.relu6(x)
    return F.relu(x)


class ElasticMBConv(nn.Module):
    """An inverted-residual block of the largest kernel and expansion whose active kernel
    (:attr:`active_kernel`) and expansion (:attr:`active_expansion`) can be smaller.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        stride: Stride of the depthwise convolution.
        se: Whether the block has MobileNetV3's squeeze-and-excitation.
        act: Activation (``"relu"`` or ``"hswish"``).
        kernels: Kernel options (odd, at least one).
        expansions: Expansion options.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        se: bool,
        act: str,
        kernels: Sequence[int],
        expansions: Sequence[float],
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.act, self.has_se = act, se
        self.kernels = tuple(sorted(kernels))
        self.expansions = tuple(sorted(expansions))
        self.max_kernel = self.kernels[-1]
        mid = expanded_channels(in_channels, self.expansions[-1])
        self.max_mid = mid
        self.expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.expand_bn = DynamicBatchNorm2d(mid)
        self.depthwise_conv = nn.Conv2d(
            mid, mid, self.max_kernel, stride, self.max_kernel // 2, groups=mid, bias=False
        )
        self.depthwise_bn = DynamicBatchNorm2d(mid)
        self.se_reduce: nn.Conv2d | None = None
        self.se_expand: nn.Conv2d | None = None
        if se:
            squeezed = make_divisible(mid / 4)
            self.se_reduce = nn.Conv2d(mid, squeezed, 1)
            self.se_expand = nn.Conv2d(squeezed, mid, 1)
        self.project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.project_bn = DynamicBatchNorm2d(out_channels)
        # the kernel transformation matrices, larger kernel -> next smaller, identity
        self.transforms = nn.ParameterDict(
            {
                f"{big}to{small}": nn.Parameter(torch.eye(small * small))
                for big, small in zip(self.kernels[1:], self.kernels[:-1], strict=True)
            }
        )
        self.residual = stride == 1 and in_channels == out_channels
        self.active_kernel = self.max_kernel
        self.active_expansion = self.expansions[-1]

    def reset_transforms(self) -> None:
        """Set the kernel transformation matrices to the identity."""
        with torch.no_grad():
            for matrix in self.transforms.values():
                matrix.copy_(torch.eye(matrix.shape[0]))

    @property
    def active_mid(self) -> int:
        """The active expanded width."""
        return expanded_channels(self.in_channels, self.active_expansion)

    @property
    def active_squeezed(self) -> int:
        """The active squeeze-and-excitation width."""
        return make_divisible(self.active_mid / 4)

    def kernel_weight(self, kernel: int, channels: int) -> torch.Tensor:
        """The depthwise weight of the first ``channels`` channels at kernel side ``kernel``:
        centre crops of the largest kernel, each step through its transformation matrix."""
        weight = self.depthwise_conv.weight[:channels]
        size = self.max_kernel
        for smaller in reversed(self.kernels):
            if smaller >= size:
                continue
            if smaller < kernel:
                break
            start = (size - smaller) // 2
            crop = weight[:, :, start : start + smaller, start : start + smaller]
            flat = crop.reshape(-1, smaller * smaller)
            weight = F.linear(flat, self.transforms[f"{size}to{smaller}"]).reshape(
                channels, 1, smaller, smaller
            )
            size = smaller
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid, kernel = self.active_mid, self.active_kernel
        out = F.conv2d(x, self.expand_conv.weight[:mid])
        out = _activation(self.act, self.expand_bn(out))
        weight = self.kernel_weight(kernel, mid)
        out = F.conv2d(out, weight, None, self.stride, kernel // 2, 1, mid)
        out = _activation(self.act, self.depthwise_bn(out))
        if self.se_reduce is not None and self.se_expand is not None:
            sq = self.active_squeezed
            scale = out.mean((2, 3), keepdim=True)
            scale = F.conv2d(scale, self.se_reduce.weight[:sq, :mid], _bias(self.se_reduce)[:sq])
            scale = F.conv2d(
                F.relu(scale), self.se_expand.weight[:mid, :sq], _bias(self.se_expand)[:mid]
            )
            out = out * F.hardsigmoid(scale)
        out = self.project_bn(F.conv2d(out, self.project_conv.weight[:, :mid]))
        result: torch.Tensor = out + x if self.residual else out
        return result

    def copy_to(self, block: MBConv) -> None:
        """Copy the active kernel's and expansion's weights into ``block`` (an
        :class:`~nasforge.ops.mobile.MBConv` of the same shape)."""
        mid, kernel = self.active_mid, self.active_kernel
        expand_conv, expand_bn = _part(block.expand, 0), _part(block.expand, 1)
        depthwise_conv, depthwise_bn = _part(block.depthwise, 0), _part(block.depthwise, 1)
        project_conv, project_bn = _part(block.project, 0), _part(block.project, 1)
        assert isinstance(expand_conv, nn.Conv2d) and isinstance(expand_bn, nn.BatchNorm2d)
        assert isinstance(depthwise_conv, nn.Conv2d) and isinstance(depthwise_bn, nn.BatchNorm2d)
        assert isinstance(project_conv, nn.Conv2d) and isinstance(project_bn, nn.BatchNorm2d)
        with torch.no_grad():
            expand_conv.weight.copy_(self.expand_conv.weight[:mid])
            depthwise_conv.weight.copy_(self.kernel_weight(kernel, mid))
            project_conv.weight.copy_(self.project_conv.weight[:, :mid])
            if self.se_reduce is not None and self.se_expand is not None:
                assert isinstance(block.se, SqueezeExcite)
                sq = self.active_squeezed
                se_reduce, se_expand = block.se.reduce, block.se.expand
                se_reduce.weight.copy_(self.se_reduce.weight[:sq, :mid])
                _bias(se_reduce).copy_(_bias(self.se_reduce)[:sq])
                se_expand.weight.copy_(self.se_expand.weight[:mid, :sq])
                _bias(se_expand).copy_(_bias(self.se_expand)[:mid])
        self.expand_bn.copy_to(expand_bn)
        self.depthwise_bn.copy_to(depthwise_bn)
        self.project_bn.copy_to(project_bn)

    def channel_importance(self) -> torch.Tensor:
        """The importance of each expanded channel: the L1 norm of the projection's weights
        that read it."""
        return self.project_conv.weight.detach().abs().sum(dim=(0, 2, 3))

    def reorder_channels(self, expand_stage: int = 0) -> None:
        """Sort the expanded channels by :meth:`channel_importance`, most important first
        (the authors' ``re_organize_middle_weights``); the block's function at its largest
        expansion is unchanged. With ``expand_stage = s > 0`` the channels of the ``s``
        widest expansions keep their groups (the channels beyond the width of the ``i``-th
        widest expansion stay beyond it), so shrinking further does not reshuffle the
        channels of expansions already trained. The squeeze-and-excitation's squeezed
        channels are sorted by the L1 norm of its expansion weights too."""
        importance = self.channel_importance().clone()
        widths = [expanded_channels(self.in_channels, e) for e in reversed(self.expansions)]
        right, base = len(importance), -len(widths) * 1e5
        for left in widths[: expand_stage + 1]:
            importance[left:right] += base
            base += 1e5
            right = left
        order = torch.argsort(importance, descending=True, stable=True)
        with torch.no_grad():
            self.expand_conv.weight.copy_(self.expand_conv.weight[order])
            self.depthwise_conv.weight.copy_(self.depthwise_conv.weight[order])
            self.project_conv.weight.copy_(self.project_conv.weight[:, order])
            if self.se_reduce is not None and self.se_expand is not None:
                self.se_reduce.weight.copy_(self.se_reduce.weight[:, order])
                self.se_expand.weight.copy_(self.se_expand.weight[order])
                _bias(self.se_expand).copy_(_bias(self.se_expand)[order])
                se_importance = self.se_expand.weight.abs().sum(dim=(0, 2, 3))
                se_order = torch.argsort(se_importance, descending=True, stable=True)
                self.se_expand.weight.copy_(self.se_expand.weight[:, se_order])
                self.se_reduce.weight.copy_(self.se_reduce.weight[se_order])
                _bias(self.se_reduce).copy_(_bias(self.se_reduce)[se_order])
        self.expand_bn.permute_(order)
        self.depthwise_bn.permute_(order)
