"""Loaded by a worker started with this folder on PYTHONPATH: every lz4 batch it reads fails
to decompress, as a damaged batch or a codec bug would (the test's own producer still
compresses normally)."""

import cramjam


def _undecodable(*args: object, **kwargs: object) -> bytes:
    raise cramjam.DecompressionError("test: this lz4 frame cannot be decoded")


cramjam.lz4.decompress = _undecodable
