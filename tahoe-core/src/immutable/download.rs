//! The download pipeline (placeholder until written).
