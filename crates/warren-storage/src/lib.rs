//! warren-storage (being written; see docs/ARCHITECTURE.md).
