"""Images from a trained generator at any size, and zooms into them (`anyres-generate`).

- seeds.py: `--seeds 0-15,42` and the latent of each seed.
- tiles.py: where the tiles of a W x H image lie on the canvas, and rendering them in batches.
- memory.py: how many tiles a device call takes, and the host-memory bound that is stated.
- png.py: a PNG written a band of rows at a time, so no image is ever whole in memory.
- images.py: an image and its JSON sidecar, written atomically in PNG, JPEG or WebP.
- panorama_turn.py: a 360° model's whole turn, whose left and right edges join.
- zoom.py: a continuous zoom from the whole canvas into a point, as frames, WebP and MP4.
- config.py: a generation's config, resolved against the loaded generator.
- outputs.py: the generator loaded from its snapshot, and the files of every seed.
"""
