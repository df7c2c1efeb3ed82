"""Drawing, and looking inside nets that it is handed (§6): image grids and uint8 conversion (plots),
latent walks and vector arithmetic (latent), guided backprop and dropped feature maps (dissect), face grids
(faces), the OpenCV face detector (face_detect) and the attribute classifiers (attributes). It takes nets as
arguments and never builds or trains one: it imports `records`, `data` and `config` only, so the trainer and
every measure above can draw with it.
"""
