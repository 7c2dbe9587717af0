//! trends (in progress).
