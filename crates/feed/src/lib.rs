//! feed (in progress).
