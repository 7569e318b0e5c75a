"""The facts each artifact carries and their verification: graph sidecars, engine manifests, OpenVINO IR sidecars
and TensorRT calibration caches. Export and calibrate write them; the runtime reads them."""
