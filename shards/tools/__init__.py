"""`anyres-shards` and what it shows of a dataset: verify, summaries, plots, cards, attribution,
export and subsets."""
