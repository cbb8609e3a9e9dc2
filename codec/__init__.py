"""The codec's stages, one sub-package each; the public API is the top-level ``sdcodec``.

Nothing is imported here, so ``import sdcodec.codec.coding`` stays free of torch.
"""
