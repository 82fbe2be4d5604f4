"""The ``onnxruntime`` runtime: dynamo export (``export.py``), ORT's int8 forms (``quantize.py``),
GRU nodes unrolled into MatMuls (``gru.py``), and the session it runs in, registered as the
runtime (``session.py``). The only package that imports onnx, onnxscript and onnxruntime."""
