"""Training: the streaming patch loader, the any-resolution GAN, generation and metrics.
Reads datasets through `shards`; never imports ray or flickrapi.

    geometry.py   the patch transform T and its arithmetic (DESIGN.md 3), shared by all below
    checkpoint.py checkpoints and network snapshots; load_generator, the one way to build G from a file
    dist.py       process groups under torchrun and the few collectives; every command may import
                  these two, so no folder below imports another in a loop (tests/training/test_structure.py)
    loader/       stored bytes -> patches -> typed batches, over ranks and workers; preview
    networks/     StyleGAN3-T synthesis (plan, resampling, generator), discriminator,
                  augmentation, losses; render (T -> pixels)
    run/          config tree and presets, checks, trainer, loop, what a run writes
    generate/     images of any size by tiles, zooms (`anyres-generate`)
    eval/         the paper's metrics and their cached real statistics (`anyres-eval`)
    commands/     the console scripts, thin layers over the folders above: train.py is
                  `anyres-train` (train_flags.py its train flags), eval.py `anyres-eval`,
                  generate.py `anyres-generate`; __main__.py is `python -m training`
"""
