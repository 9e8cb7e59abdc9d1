//! warren-server (being written; see docs/ARCHITECTURE.md).
