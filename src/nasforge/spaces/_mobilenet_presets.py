"""The published networks of the ``mobilenet`` space, as their architecture texts.

Each entry is the network's per-layer configuration written in the text of
:class:`nasforge.spaces.mobilenet.MobileNetSpace` (``e<expansion>k<kernel>`` per block, then
its squeeze-and-excitation variant and activation where they are not the defaults), read from
the paper and checked against the code named beside it. Stage ``i`` lists its blocks; a
network without the sixth stage leaves it empty. Published parameters and multiply-adds
(224x224 input, 1,000 classes) are in :data:`PUBLISHED`.

Departures, the same in every network: ReLU6 (MobileNetV2, ProxylessNAS) is written ``relu``
(the space's activations are ReLU and h-swish; the costs are the same), and batch norm keeps
PyTorch's defaults.
"""

from __future__ import annotations

__all__ = ["NETWORKS", "PUBLISHED", "SOURCES"]

#: name -> architecture text.
NETWORKS: dict[str, str] = {
    # Sandler et al., CVPR 2018, arXiv:1801.04381, Table 2 (t, c, n, s); torchvision
    # models/mobilenetv2.py inverted_residual_setting.
    "mobilenetv2": (
        "stem=32-relu;s0=16:e1k3;s1=24:e6k3,e6k3;s2=32:e6k3,e6k3,e6k3;"
        "s3=64:e6k3,e6k3,e6k3,e6k3;s4=96:e6k3,e6k3,e6k3;s5=160:e6k3,e6k3,e6k3;"
        "s6=320:e6k3;head=conv1280-relu"
    ),
    # Howard et al., ICCV 2019, arXiv:1905.02244, Table 1 (exp size / #out, SE, NL, s);
    # torchvision models/mobilenetv3.py _mobilenet_v3_conf("mobilenet_v3_large"). One
    # departure: the space's expansions are 1, 3, 4, 6, so the 80-channel stage's expanded
    # widths 200 and 184 (2.5x and 2.3x) are 240 (3x) here: +0.5% parameters, +2.3% MACs.
    "mobilenetv3-large": (
        "stem=16-hswish;s0=16:e1k3;s1=24:e4k3,e3k3;"
        "s2=40:e3k5-se_mobilenetv3,e3k5-se_mobilenetv3,e3k5-se_mobilenetv3;"
        "s3=80:e6k3-hswish,e3k3-hswish,e3k3-hswish,e3k3-hswish;"
        "s4=112:e6k3-se_mobilenetv3-hswish,e6k3-se_mobilenetv3-hswish;"
        "s5=160:e6k5-se_mobilenetv3-hswish,e6k5-se_mobilenetv3-hswish,"
        "e6k5-se_mobilenetv3-hswish;s6=320:;head=efficient-hswish"
    ),
    # Tan et al., CVPR 2019, arXiv:1807.11626, Figure 7(a); tensorflow/tpu
    # models/official/mnasnet/mnasnet_models.py mnasnet_a1 (block strings, se_ratio 0.25 of
    # the block's input filters).
    "mnasnet-a1": (
        "stem=32-relu;s0=16:e1k3;s1=24:e6k3,e6k3;"
        "s2=40:e3k5-se_mnasnet,e3k5-se_mnasnet,e3k5-se_mnasnet;s3=80:e6k3,e6k3,e6k3,e6k3;"
        "s4=112:e6k3-se_mnasnet,e6k3-se_mnasnet;"
        "s5=160:e6k5-se_mnasnet,e6k5-se_mnasnet,e6k5-se_mnasnet;s6=320:e6k3;"
        "head=conv1280-relu"
    ),
    # Cai, Zhu and Han, ICLR 2019, arXiv:1812.00332, Figure 4 (mobile); the released
    # configuration as osmr/imgclsmob pytorch/pytorchcv/models/proxylessnas.py transcribes it
    # (zero-layers dropped: they are identity layers of the stage).
    "proxylessnas-mobile": (
        "stem=32-relu;s0=16:e1k3;s1=32:e3k5,e3k3;s2=40:e3k7,e3k3,e3k5,e3k5;"
        "s3=80:e6k7,e3k5,e3k5,e3k5;s4=96:e6k5,e3k5,e3k5,e3k5;s5=192:e6k7,e6k7,e3k7,e3k7;"
        "s6=320:e6k7;head=conv1280-relu"
    ),
    # Cai, Zhu and Han, ICLR 2019, Figure 4 (GPU); same source as the mobile network.
    "proxylessnas-gpu": (
        "stem=40-relu;s0=24:e1k3;s1=32:e3k5;s2=56:e3k7,e3k3;s3=112:e6k7,e3k5;"
        "s4=128:e6k5,e3k3,e3k5;s5=256:e6k7,e6k7,e6k7,e6k5;s6=432:e6k7;head=conv1728-relu"
    ),
    # Stamoulis et al., ECML-PKDD 2019, arXiv:1904.02877: the network as timm
    # (efficientnet builder, _gen_spnasnet) and osmr/imgclsmob pytorchcv/models/spnasnet.py
    # define it, on the skeleton of the authors' enyac-group/single-path-nas
    # train-final/parse_netarch.py (a 16-channel first block, five groups of up to four
    # blocks of 24, 40, 80, 96 and 192 channels, a fixed e6k3 320-channel last block). Its
    # MACs are 8.6% below the 365M of PUBLISHED; the gap is not explained here.
    "single-path-nas": (
        "stem=32-relu;s0=16:e1k3;s1=24:e3k3,e3k3,e3k3;s2=40:e6k5,e3k3,e3k3,e3k3;"
        "s3=80:e6k5,e3k3,e3k3,e3k3;s4=96:e6k5,e3k5,e3k5,e3k5;s5=192:e6k5,e6k5,e6k5,e6k5;"
        "s6=320:e6k3;head=conv1280-relu"
    ),
}

#: name -> (parameters in millions, multiply-adds in millions) as the paper reports them
#: for 224x224 inputs and 1,000 classes.
PUBLISHED: dict[str, tuple[float, float]] = {
    "mobilenetv2": (3.4, 300.0),
    "mobilenetv3-large": (5.4, 219.0),
    "mnasnet-a1": (3.9, 312.0),
    "proxylessnas-mobile": (4.1, 320.0),
    "proxylessnas-gpu": (7.1, 465.0),
    "single-path-nas": (4.3, 365.0),
}

#: name -> where :data:`PUBLISHED` comes from.
SOURCES: dict[str, str] = {
    "mobilenetv2": "Sandler et al., CVPR 2018, arXiv:1801.04381, Table 4",
    "mobilenetv3-large": "Howard et al., ICCV 2019, arXiv:1905.02244, Table 3",
    "mnasnet-a1": "Tan et al., CVPR 2019, arXiv:1807.11626, Table 1",
    "proxylessnas-mobile": "Cai et al., ICLR 2019, arXiv:1812.00332 (issue 18's reading)",
    "proxylessnas-gpu": "Cai et al., ICLR 2019, arXiv:1812.00332 (issue 18's reading)",
    "single-path-nas": "Stamoulis et al., ECML-PKDD 2019, arXiv:1904.02877 (issue 18's reading)",
}
