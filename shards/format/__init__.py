"""The dataset format itself (DESIGN.md 2): the sample record, the manifest and its root hash,
the index, the tar members, the bounds of a read, and the one writer and reader."""
