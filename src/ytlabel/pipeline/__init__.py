"""The pipeline's stages as library functions: each KFP component in components/ parses its artifacts,
calls one function here, and logs what it returns.

    dataset.py   ingest (resolve or synthesise shards, split them) and the training grid
    stages.py    where a run's outputs live, expand, train (as a PyTorchJob/TFJob), evaluate, select, register
    deploy.py    serve the champion: an InferenceService on a cluster, a local KServe server otherwise
"""
