//! SQL persistence of galleries, identities and faces.
