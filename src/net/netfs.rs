//! NetFs.
