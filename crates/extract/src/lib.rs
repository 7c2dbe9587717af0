//! extract (in progress).
