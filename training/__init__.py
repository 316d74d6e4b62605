"""Training: the streaming patch loader, the any-resolution GAN, generation and metrics.
Reads datasets through `shards`; never imports ray or flickrapi."""
