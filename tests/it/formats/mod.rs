//! Tahoe-LAFS's own bytes, and the parsers against hostile input.

mod hostile_input;
mod tahoe_dirnodes;
mod tahoe_mutable_shares;
mod tahoe_shares;
mod tahoe_vectors;
