//! warren-raft (being written; see docs/ARCHITECTURE.md).
