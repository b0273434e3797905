//! Open-set evaluation: metrics, threshold calibration and baselines.
