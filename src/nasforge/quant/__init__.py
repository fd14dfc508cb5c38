"""Quantized networks: export, search and costs beyond the fake-quantized layers.

The fake-quantized layers themselves (precisions, :class:`~nasforge.ops.quant.QuantConv2d`,
``quantize_model``, ``calibrate``, ``model_bits``, ``bops``) live in :mod:`nasforge.ops.quant`.
This package holds what is built on them, one module each, imported on use (none of them is
imported here, so ``import nasforge.quant`` does not import PyTorch):

* :mod:`nasforge.quant.onnx`: a fake-quantized int8 network exported to ONNX with
  QuantizeLinear/DequantizeLinear pairs, run and timed with ONNX Runtime.
* :mod:`nasforge.quant.fliqs`: one-shot mixed-precision search (FLIQS).
* :mod:`nasforge.quant.simq`: joint architecture and precision search (SimQ-NAS).
"""
