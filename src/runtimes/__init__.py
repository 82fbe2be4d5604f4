"""Deployment runtimes: where a variant would ship, as something the latency harness can call.

One module or folder per runtime, each registering its ``deploy`` function
(:func:`src.runtimes.base.register_runtime`); :mod:`src.runtimes.base` names the built-in ones as
``"module:function"`` strings, so choosing runtimes imports nothing until one deploys:

- ``base.py``: :class:`RuntimeSpec`, :class:`DeployContext`, :class:`Deployed`, the registry,
  :class:`RuntimeUnavailable` and the torch-only helpers the pipeline shares (``max_abs_diff``).
- ``eager.py``: the model itself in PyTorch, the reference every speedup divides.
- ``onnxruntime/``: the dynamo export (``export.py``) in ONNX Runtime's CPU provider
  (``session.py``); int8 variants as ORT's own int8 form of their method (``quantize.py``), GRUs
  unrolled into MatMuls for it (``gru.py``). Only this folder imports onnx and onnxruntime.
- ``compile.py``: ``torch.compile`` (inductor, freezing); int8 variants through PT2E.
- ``cuda.py``: the variant on a GPU, where there is one.

A new runtime (OpenVINO, TensorRT) is one more module registering itself, and one line in
:data:`src.runtimes.base.BUILT_IN`.
"""
