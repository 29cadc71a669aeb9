//! The storage protocol: the server's rules, the upload sink, and a
//! hostile peer against real nodes.

mod attacks;
mod happy_sink;
mod lease_crawler;
mod storage_server;
