//! search (in progress).
