//! SFTP (placeholder)
