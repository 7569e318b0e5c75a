"""gedge.inspection: images and line-scan strips through any backend: tiles, a decision per tile and per image,
defect boxes, overlays.

An image of any size (a 256 x 256 board, a 256 x 4096 line-scan strip) is cut into the network inputs the model
takes by the one tiler that training, evaluation, parity and the INT8 gate use
(:func:`gedge.data.tiles.tile_image`). Every tile gets the model's scores and a decision (normalised score >=
threshold); an image is rejected when any of its tiles is. Tiles over the threshold that overlap or touch are
merged into defect boxes (:mod:`gedge.inspection.boxes`). With overlays, a PNG per image shows the heat map and
the boxes (:mod:`gedge.inspection.overlays`). The tiles go through the pipelined loop (:mod:`gedge.runtime.loop`);
an image that cannot be read is reported with its error and skipped. :mod:`gedge.inspection.session` opens the
model's backend and runs a whole request (what ``gedge inspect`` calls).
"""
