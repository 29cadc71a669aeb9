//! Files and directories through the client pipelines, on an in-process
//! grid ([`testkit::MemGrid`]).

mod check;
mod dirnodes;
mod immutable;
mod mutable;
mod repair;
mod year;
