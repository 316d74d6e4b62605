"""Where a dataset lives: a local folder, an http(s) prefix or any fsspec URL, read within bounds."""
