//! Image folders, decoding, preprocessing, augmentation and sampling.
