//! Plugins: libraries loaded at run time, the `tahoe plugins` command, and
//! what the conformance suites report.

mod command;
mod loaded;
mod suites;
