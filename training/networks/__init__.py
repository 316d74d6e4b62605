"""The any-resolution GAN's networks (layers, filters, generator, discriminator), its losses, and
rendering a generator through the patch transform T (render)."""
