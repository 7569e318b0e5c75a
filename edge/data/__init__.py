"""gedge.data: image folders and data sets, tiling, sampling, proxy anomalies and the synthetic materials."""
