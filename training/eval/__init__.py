"""anyres-eval: the paper's metrics (fid-full, fid-up, pfid) and more (pFID per scale bin, KID,
a high-frequency proxy), from a snapshot against a dataset, with cached real statistics."""
