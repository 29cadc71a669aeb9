//! The web gateway against hostile pages, users and servers, and the web UI
//! in a real browser.

mod browser;
mod hardening;
