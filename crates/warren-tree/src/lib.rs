//! warren-tree (being written; see docs/ARCHITECTURE.md).
