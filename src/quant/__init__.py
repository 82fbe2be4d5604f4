"""Quantization internals: the only package that imports ``torch.ao``.

- :mod:`src.quant.backend`: prepare / calibrate / convert with the eager ``torch.ao.quantization``
  API (qconfigs, observers, fusion, quant stubs, dynamic quantization).
- :mod:`src.quant.introspect`: how packed int8 / fp16 modules store their weights (is_quantized,
  precision, packed tensors).
- :mod:`src.quant.state`: portable state dicts for the weights-only artifact.
- :mod:`src.quant.deploy`: the float twin of an int8 variant, for runtimes that quantize it.
- :mod:`src.quant.pt2e`: that twin as PT2E int8 (torchao's x86 inductor quantizer), the
  maintained int8 path that ``torch.compile`` lowers to oneDNN kernels.
"""
