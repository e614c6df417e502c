"""Data contracts, readers and sources."""
