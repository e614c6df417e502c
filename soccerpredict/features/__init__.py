"""Point-in-time features shared by the offline pipeline and Serve."""
