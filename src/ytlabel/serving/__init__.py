"""KServe serving of registry versions: payload rules (numpy) and the kserve.Model predictor."""
