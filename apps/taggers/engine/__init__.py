"""The tagger engine: backends that run models (docs/taggers.md#engine).

Only modules in this package import torch, open_clip, onnxruntime or scikit-learn, and only in
worker processes; nothing here imports Django models. `base` is light (no ML imports) so the
services may use its errors and types.
"""
