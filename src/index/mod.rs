//! Nearest-neighbour search over unit-length embeddings.
